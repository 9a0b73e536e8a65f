// Reads what the drill and the benchmark need from a deployed stack: its outputs (with
// secrets) and the passwords they do not carry. Needs scripts/env.sh's environment.
import { execFileSync } from "child_process";
import * as path from "path";
import type { Endpoint } from "../../components/endpoint";
import { labHosts } from "../../lab/hosts";
import type { DrillTarget } from "./drill";

const ROOT = path.resolve(__dirname, "..", "..");
const pulumi = (...args: string[]) => execFileSync("pulumi", args, { cwd: ROOT, encoding: "utf8" });

export function drillTarget(stack: string): DrillTarget & { write: Endpoint; appPassword: string; sentinels: Endpoint[]; sentinelPassword: string } {
    const out = JSON.parse(pulumi("stack", "output", "--json", "--show-secrets", "--stack", stack));
    if (!out.vipClient) throw new Error(`stack ${stack} has no VIP proxy (set redis-ha:proxy.nodes and the VIPs)`);
    const secret = (key: string) => pulumi("config", "get", "--stack", stack, `redis-ha:${key}`).trim();
    return {
        hosts: labHosts(),
        sentinelClient: out.ioredis,
        vipClient: out.vipClient,
        masterName: out.masterName,
        adminPassword: secret("adminPassword"),
        appPassword: secret("appPassword"),
        write: out.write,
        sentinels: out.sentinels,
        sentinelPassword: out.ioredis.sentinelPassword,
        // With TLS: the drill's own connections trust the CA (and present the app's certificate).
        ...(out.ioredis.tls ? { tls: out.ioredis.tls } : {}),
    };
}
