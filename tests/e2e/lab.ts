// Helpers for end-to-end tests against the lab (lab/lab.sh): hosts, SSH, and stacks driven
// through the Automation API with the project's real CLI and a local file backend.
import { execFileSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import Redis, { type RedisOptions } from "ioredis";
import { script } from "../../components/assets";
import { awaitAgreement } from "../../components/sentinel-agreement";
import { sshRun } from "../../components/ssh";
import { labHosts, labKey, type LabHost } from "../../lab/hosts";
import { PASSWORD_KEYS, PasswordKey } from "../../components/config";

export const ROOT = path.resolve(__dirname, "..", "..");
export { lab, labHosts, labKey, onHost } from "../../lab/hosts";
export type { LabHost } from "../../lab/hosts";

/**
 * Runs assets/<name> on a lab host (by name) as root, exactly as RemoteCommand runs it: the
 * script as script() builds it (with `built`'s files and variables), framed by sshRun with `env` exported and `stdin` after it, over
 * SSH with the lab's key (the host key is not checked). Returns stdout, or throws with the tail
 * of stderr.
 */
export async function runAsset(host: string, name: string, env: Record<string, string>, stdin = "", built: { files?: Record<string, string>; variables?: Record<string, string> } = {}): Promise<string> {
    const ip = labHosts().find((h) => h.name === host)?.ip;
    if (!ip) throw new Error(`no lab host named ${host}`);
    return (await sshRun({ host: ip, user: "root", privateKey: labKey() }, script(name, built.files, built.variables), env, stdin)).stdout;
}

/**
 * Removes what earlier tests left in /var/lib/redis on the lab hosts at these addresses, where no
 * Redis runs: a cluster created on servers that hold data keeps the newest (README "Day 2"), and
 * each test wants a new one. Hosts that are off or not in the lab are skipped.
 */
export function wipeRedisData(ips: string[]) {
    const lab = (...args: string[]) => execFileSync("bash", [path.join(ROOT, "lab", "lab.sh"), ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, LAB_HOSTS: "6" } });
    for (const line of lab("hosts").trim().split("\n")) {
        const [name, ip] = line.split(/\s+/);
        if (!ips.includes(ip)) continue;
        try {
            lab("ssh", name, "pgrep -x redis-server >/dev/null || find /var/lib/redis -mindepth 1 -delete 2>/dev/null; true");
        } catch {
            // the host is off
        }
    }
}

/** A stack of this project on the lab, created fresh (an old one of the same name is removed), on servers without Redis data. */
export async function freshStack(name: string, config: Record<string, { value: string; secret?: boolean }>): Promise<Stack> {
    const nodes = config["redis-ha:nodes"] ? (JSON.parse(config["redis-ha:nodes"].value) as { host: string }[]) : [];
    wipeRedisData(nodes.map((n) => n.host));
    const ws = await LocalWorkspace.create({ workDir: ROOT });
    // A run that was killed leaves its lock behind in the local backend; the stack goes anyway.
    const backend = (process.env.PULUMI_BACKEND_URL ?? "").replace(/^file:\/\//, "");
    if (backend) fs.rmSync(path.join(backend, ".pulumi", "locks", "organization", "redis-ha", name), { recursive: true, force: true });
    try {
        await ws.removeStack(name, { force: true });
    } catch {
        // it did not exist
    }
    const stack = await Stack.create(name, ws);
    await stack.setAllConfig(config);
    return stack;
}

/** Fresh random passwords for every secret key of the stack config. */
export function newPasswords(): Record<PasswordKey, string> {
    return Object.fromEntries(PASSWORD_KEYS.map((k) => [k, randomBytes(24).toString("base64url")])) as Record<PasswordKey, string>;
}

/** The VIPs the proxy's tests float on the lab's network: .100 for writes, .101 for reads. */
export function labVips(hosts: LabHost[]) {
    const subnet = hosts[0].ip.replace(/\.\d+$/, "");
    return { writeVip: `${subnet}.100`, readVip: `${subnet}.101` };
}

/** Fresh passwords for a stack with the proxy: every key's, the health check's and the stats page's. */
export function proxyPasswords() {
    const suffix = Date.now().toString(36) + "-0123456789";
    return { ...newPasswords(), healthCheckPassword: `hc-${suffix}`, statsPassword: `st-${suffix}` };
}

/**
 * Config for a stack on the given lab hosts with the lab's key: lab-sized memory and fast
 * failure detection (down-after 1 s), as scripts/lab-stack.sh sets for the lab stack.
 */
export function labConfig(hosts: LabHost[], passwords: Record<PasswordKey, string>, extra: Record<string, string> = {}) {
    return {
        "redis-ha:nodes": { value: JSON.stringify(hosts.map((h) => ({ name: h.name, host: h.ip }))) },
        "redis-ha:sshPrivateKey": { value: labKey(), secret: true },
        "redis-ha:redis": { value: JSON.stringify({ maxmemory: "64mb" }) },
        "redis-ha:sentinel": { value: JSON.stringify({ downAfterMilliseconds: 1000, failoverTimeout: 10000, agreementTimeoutSeconds: 120 }) },
        ...Object.fromEntries(Object.entries(passwords).map(([k, v]) => [`redis-ha:${k}`, { value: v, secret: true }])),
        ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, { value: v }])),
    };
}

/** The stack's state as `pulumi stack export` shows it, secrets encrypted (the Automation API's exportStack decrypts them). */
export function exportState(stack: string): { resources: { urn: string; dependencies?: string[]; outputs?: Record<string, unknown> }[] } {
    const out = execFileSync("pulumi", ["stack", "export", "--stack", stack], { cwd: ROOT, encoding: "utf8", maxBuffer: 256 << 20 });
    return JSON.parse(out).deployment;
}

/** Every file of the local backend (state, history, backups) that contains `needle`. */
export function backendFilesContaining(needle: string): string[] {
    const url = process.env.PULUMI_BACKEND_URL ?? "";
    if (!url.startsWith("file://")) throw new Error("the e2e tests need a local file backend (PULUMI_BACKEND_URL=file://…)");
    const found: string[] = [];
    const walk = (dir: string) => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const p = path.join(dir, entry.name);
            if (entry.isDirectory()) walk(p);
            else if (fs.readFileSync(p).includes(needle)) found.push(p);
        }
    };
    walk(url.slice("file://".length));
    return found;
}

/**
 * Runs fn on a fresh connection (fail fast, no retries) and closes it; undefined when the
 * server does not answer or refuses.
 */
export async function askRedis<T>(opts: RedisOptions, fn: (c: Redis) => Promise<T>): Promise<T | undefined> {
    const c = new Redis({ lazyConnect: true, enableReadyCheck: false, connectTimeout: 1000, commandTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, ...opts });
    c.on("error", () => undefined);
    try {
        await c.connect();
        return await fn(c);
    } catch {
        return undefined;
    } finally {
        c.disconnect();
    }
}

/** Waits until the group on these lab hosts (default ports, group `mymaster`) agrees, as the SentinelAgreement resource does. */
export function labAgreement(hosts: LabHost[], adminPassword: string, timeoutSeconds = 60) {
    return awaitAgreement({
        masterName: "mymaster",
        sentinels: hosts.map((h) => ({ name: h.name, host: h.ip, port: 26379 })),
        redis: hosts.map((h) => ({ name: h.name, host: h.ip, port: 6379 })),
        adminPassword,
        timeoutSeconds,
        revisions: [],
        providerVersion: "test",
    });
}

/** Seconds until cond() holds, polled every 100 ms; throws naming `what` after the limit. */
export async function waitFor(what: string, cond: () => Promise<boolean>, limitSeconds: number): Promise<number> {
    const start = Date.now();
    while (!(await cond())) {
        if (Date.now() - start > limitSeconds * 1000) throw new Error(`${what}: not within ${limitSeconds} s`);
        await new Promise((r) => setTimeout(r, 100));
    }
    return (Date.now() - start) / 1000;
}

/** Runs fn and returns its result with the seconds it took. */
export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
    const start = process.hrtime.bigint();
    const result = await fn();
    return [result, Number(process.hrtime.bigint() - start) / 1e9];
}
