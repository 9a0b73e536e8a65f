// redis-benchmark through the write VIP and straight to the master, interleaved in one run
// (this machine is noisy), as the `app` user, with a given pipeline depth (-P). Returns
// requests per second and the ratio.
import { execFileSync } from "child_process";
import type { Endpoint } from "../../components/endpoint";
import { median } from "../bench/stats";

export interface BenchResult {
    test: string;
    direct: number;
    vip: number;
    ratio: number;
}

/** Requests per second of one redis-benchmark run, by test name (SET, GET). */
function benchmark(host: string, port: number, password: string, requests: number, pipeline: number): Record<string, number> {
    // -a puts the password on this machine's command line (redis-benchmark has no other way);
    // it is the lab's, and the lab runs on this machine only.
    const csv = execFileSync("redis-benchmark", ["-h", host, "-p", String(port), "--user", "app", "-a", password, "-t", "set,get", "-n", String(requests), "-c", "20", "-P", String(pipeline), "--csv"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
    });
    const rps: Record<string, number> = {};
    for (const line of csv.trim().split("\n").slice(1)) {
        const [test, value] = line.split(",").map((c) => c.replace(/"/g, ""));
        rps[test] = Number(value);
    }
    return rps;
}

export function benchVip(master: Endpoint, vip: Endpoint, password: string, rounds = 3, requests = 20000, pipeline = 1): BenchResult[] {
    const direct: Record<string, number[]> = {};
    const viaVip: Record<string, number[]> = {};
    for (let i = 0; i < rounds; i++) {
        for (const [into, target] of [[direct, master], [viaVip, vip]] as const) {
            for (const [test, rps] of Object.entries(benchmark(target.host, target.port, password, requests, pipeline))) (into[test] ??= []).push(rps);
        }
    }
    return Object.keys(direct).map((test) => {
        const d = median(direct[test]);
        const v = median(viaVip[test]);
        return { test, direct: d, vip: v, ratio: Math.round((v / d) * 100) / 100 };
    });
}
