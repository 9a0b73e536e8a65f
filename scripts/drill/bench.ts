// redis-benchmark against two targets, interleaved in one run (this machine is noisy), as the
// `app` user, with a given pipeline depth (-P): through the write VIP against straight to the
// master, or with TLS against in clear. Returns requests per second and the ratio.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import type { Endpoint } from "../../components/endpoint";
import { median } from "../bench/stats";

export interface BenchResult {
    test: string;
    /** The yardstick's requests per second (straight to the master, or in clear). */
    direct: number;
    /** The compared target's (through the VIP, or with TLS). */
    vip: number;
    ratio: number;
}

/** Where redis-benchmark connects, with its extra arguments (e.g. --tls --cacert <file>). */
export interface BenchTarget extends Endpoint {
    args?: string[];
}

/** Requests per second of one redis-benchmark run, by test name (SET, GET). */
function benchmark(target: BenchTarget, password: string, requests: number, pipeline: number): Record<string, number> {
    // -a puts the password on this machine's command line (redis-benchmark has no other way);
    // it is the lab's, and the lab runs on this machine only.
    const args = ["-h", target.host, "-p", String(target.port), ...(target.args ?? []), "--user", "app", "-a", password, "-t", "set,get", "-n", String(requests), "-c", "20", "-P", String(pipeline), "--csv"];
    const csv = execFileSync("redis-benchmark", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const rps: Record<string, number> = {};
    for (const line of csv.trim().split("\n").slice(1)) {
        const [test, value] = line.split(",").map((c) => c.replace(/"/g, ""));
        rps[test] = Number(value);
    }
    return rps;
}

/** `compared` against `yardstick`, medians of `rounds` interleaved runs. */
export function benchCompare(yardstick: BenchTarget, compared: BenchTarget, password: string, rounds = 3, requests = 20000, pipeline = 1): BenchResult[] {
    const direct: Record<string, number[]> = {};
    const other: Record<string, number[]> = {};
    for (let i = 0; i < rounds; i++) {
        for (const [into, target] of [[direct, yardstick], [other, compared]] as const) {
            for (const [test, rps] of Object.entries(benchmark(target, password, requests, pipeline))) (into[test] ??= []).push(rps);
        }
    }
    return Object.keys(direct).map((test) => {
        const d = median(direct[test]);
        const v = median(other[test]);
        return { test, direct: d, vip: v, ratio: Math.round((v / d) * 100) / 100 };
    });
}

/** Through the write VIP against straight to the master; `args` for both (e.g. TLS's). */
export const benchVip = (master: Endpoint, vip: Endpoint, password: string, rounds = 3, requests = 20000, pipeline = 1, args: string[] = []) =>
    benchCompare({ ...master, args }, { ...vip, args }, password, rounds, requests, pipeline);

/**
 * redis-benchmark's arguments for a stack with TLS (the outputs' `tls`): its CA, and a client
 * certificate when the stack asks for one, written to files under `dir`. None without TLS.
 */
export function tlsBenchArgs(tls: { ca: string; cert?: string; key?: string } | undefined, dir: string): string[] {
    if (!tls) return [];
    const file = (name: string, text: string) => {
        fs.writeFileSync(path.join(dir, name), text, { mode: 0o600 });
        return path.join(dir, name);
    };
    return ["--tls", "--cacert", file("ca.crt", tls.ca), ...(tls.cert && tls.key ? ["--cert", file("client.crt", tls.cert), "--key", file("client.key", tls.key)] : [])];
}
