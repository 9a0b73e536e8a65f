// The failover drill: a writer through sentinel-aware ioredis and one through the write VIP
// keep writing while the master is taken down in one way after another. For each way and path:
// the longest time without a successful write, writes attempted / acknowledged / failed, and
// acknowledged writes missing afterwards (lost), plus the new master.
import Redis, { RedisOptions } from "ioredis";
import { discoverMaster } from "../../components/discovery";
import type { TlsClientOptions } from "../../components/redis-client";
import { AgreementInputs, awaitAgreement } from "../../components/sentinel-agreement";
import { LabHost, labAsync, labHosts } from "../../lab/hosts";

export type Mode = "crash" | "stop" | "poweroff" | "netcut";
export const MODES: Mode[] = ["crash", "stop", "poweroff", "netcut"];

/**
 * How each mode takes the master down, and brings it back (without blocking the writers); `h` is
 * the lab server. `lasting`: the master stays down until brought back, so a failover must follow.
 */
const DISRUPT: Record<Mode, { down: (h: LabHost) => Promise<string>; back: (h: LabHost) => Promise<string>; what: string; lasting: boolean }> = {
    crash: { what: "SIGKILL of redis-server (systemd restarts it)", lasting: false, down: (h) => labAsync("ssh", h.name, "kill -KILL $(systemctl show -p MainPID --value redis-server)"), back: async () => "" },
    stop: { what: "systemctl stop redis-server", lasting: true, down: (h) => labAsync("ssh", h.name, "systemctl stop redis-server"), back: (h) => labAsync("ssh", h.name, "systemctl start redis-server") },
    poweroff: { what: "the master's host powered off", lasting: true, down: (h) => labAsync("poweroff", h.name, "--hard"), back: (h) => labAsync("start", h.name) },
    netcut: { what: "the master's host network cut", lasting: true, down: (h) => labAsync("cut", h.name), back: (h) => labAsync("restore", h.name) },
};

export interface DrillTarget {
    hosts: LabHost[];
    /** The stack output `ioredis` (sentinel mode). */
    sentinelClient: RedisOptions;
    /** The stack output `vipClient` (the write VIP); without a proxy, none. */
    vipClient?: RedisOptions;
    masterName: string;
    adminPassword: string;
    /** With TLS: what the drill's own admin connections need (the outputs' `tls`). */
    tls?: TlsClientOptions;
}

export interface PathResult {
    path: "sentinel" | "vip";
    outageSeconds: number;
    attempted: number;
    acknowledged: number;
    failed: number;
    lost: number;
}

export interface ModeResult {
    mode: Mode;
    oldMaster: string;
    newMaster: string;
    /** Seconds the fault lasted: the window, or longer when no failover had happened by its end. */
    faultSeconds: number;
    paths: PathResult[];
}

export interface DrillOptions {
    /** Seconds of writing after the master goes down. Default 15. */
    windowSeconds?: number;
    /**
     * Seconds more to keep a lasting fault when no other master is named by the window's end.
     * Default 45: when sentinels start the failover at the same moment and none wins a majority
     * (a split vote), the next attempt comes 2 × failover-timeout later (20 s on the lab's stacks).
     */
    maxExtraSeconds?: number;
    /** Milliseconds between writes on each path. Default 20. */
    intervalMs?: number;
    /**
     * "fail-fast" (default): 1 s timeouts, no retries, so that failed writes are counted;
     * "outputs": the stack outputs' client options as they are, as an application has them.
     */
    clients?: "fail-fast" | "outputs";
    log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What README "Speed" tells applications to add to the outputs (a function cannot be
 * an output): reconnect attempts at most 200 ms apart, instead of ioredis's up to 2 s.
 */
export const README_CLIENT_SETTINGS: RedisOptions = { retryStrategy: (n: number) => Math.min(n * 20, 200) };

/** One writer: SET <prefix>:<path>:<n> n, every intervalMs, until stopped. */
export function writer(path: PathResult["path"], client: Redis, prefix: string, intervalMs: number, dropOnTimeout = true) {
    const acked: number[] = [];
    const okTimes: number[] = [];
    let attempted = 0;
    let failed = 0;
    let running = true;
    const done = (async () => {
        for (let n = 1; running; n++) {
            attempted++;
            try {
                await client.set(`${prefix}:${path}:${n}`, String(n));
                acked.push(n);
                okTimes.push(Date.now());
            } catch (e) {
                failed++;
                // A command that timed out may sit on a dead connection (a cut network sends no
                // reset): drop it, so that the client connects again.
                if (dropOnTimeout && /timed out/i.test((e as Error).message)) client.disconnect(true);
            }
            await sleep(intervalMs);
        }
    })();
    return {
        stop: async () => {
            running = false;
            // A client that never gives up (no commandTimeout) may wait on a dead host for
            // ever: its last write then counts as unacknowledged.
            await Promise.race([done, sleep(2000)]);
        },
        /** Acknowledged writes missing on the master now, as `reader` sees it. */
        lost: async (reader: Redis) => {
            let lost = 0;
            for (let i = 0; i < acked.length; i += 500) {
                const keys = acked.slice(i, i + 500).map((n) => `${prefix}:${path}:${n}`);
                lost += (await reader.mget(...keys)).filter((v) => v === null).length;
            }
            return lost;
        },
        result: (from: number, to: number): Omit<PathResult, "lost"> => {
            // The longest stretch without a successful write between `from` and `to`.
            const times = [from, ...okTimes.filter((t) => t > from && t < to), to];
            let outage = 0;
            for (let i = 1; i < times.length; i++) outage = Math.max(outage, times[i] - times[i - 1]);
            return { path, outageSeconds: Math.round(outage / 100) / 10, attempted, acknowledged: acked.length, failed };
        },
        acked,
    };
}

export async function runDrill(target: DrillTarget, modes: Mode[] = MODES, opts: DrillOptions = {}): Promise<ModeResult[]> {
    const windowMs = (opts.windowSeconds ?? 15) * 1000;
    const maxExtraMs = (opts.maxExtraSeconds ?? 45) * 1000;
    const intervalMs = opts.intervalMs ?? 20;
    const log = opts.log ?? (() => undefined);
    const agreement: AgreementInputs = {
        masterName: target.masterName,
        sentinels: target.hosts.map((h) => ({ name: h.name, host: h.ip, port: 26379 })),
        redis: target.hosts.map((h) => ({ name: h.name, host: h.ip, port: 6379 })),
        adminPassword: target.adminPassword,
        timeoutSeconds: 180,
        revisions: [],
        ...(target.tls ? { tls: target.tls } : {}),
        providerVersion: "drill",
    };
    const healthy = async () => (await awaitAgreement(agreement)).master.name;
    // Short connect timeouts matter: a connection to a cut-off host waits for them in full.
    const failFast = (opts.clients ?? "fail-fast") === "fail-fast";
    const clientOpts: RedisOptions = failFast
        ? { enableOfflineQueue: false, connectTimeout: 1000, commandTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => 100, lazyConnect: true }
        : { lazyConnect: true, ...README_CLIENT_SETTINGS };
    // No failoverDetector: it can end the client for good during a power-off (cluster.ts).
    const sentinelOpts: RedisOptions = failFast ? { sentinelRetryStrategy: () => 100 } : {};
    const results: ModeResult[] = [];

    // After a replacement a node's name is not its server's: the lab verbs go to the server by address.
    const servers = labHosts();
    const serverOf = (h: LabHost): LabHost => servers.find((s) => s.ip === h.ip) ?? h;
    /** A majority of the sentinels names a master other than `old`. */
    const failedOverFrom = async (old: LabHost) => {
        const named = await discoverMaster(agreement.sentinels, target.masterName, target.adminPassword, { username: "admin", majority: true, tls: target.tls });
        return named !== undefined && named.host !== old.ip;
    };

    for (const mode of modes) {
        const oldName = await healthy();
        const old = target.hosts.find((h) => h.name === oldName)!;
        const server = serverOf(old);
        log(`${mode}: master ${old.name}${server.name === old.name ? "" : ` (server ${server.name})`}; ${DISRUPT[mode].what}`);
        const sentinel = new Redis({ ...target.sentinelClient, ...clientOpts, ...sentinelOpts });
        const vip = target.vipClient && new Redis({ ...target.vipClient, ...clientOpts });
        const clients = vip ? [sentinel, vip] : [sentinel];
        for (const c of clients) c.on("error", () => undefined);
        await Promise.all(clients.map((c) => c.connect()));
        const writers = [writer("sentinel", sentinel, `drill:${mode}`, intervalMs, failFast), ...(vip ? [writer("vip", vip, `drill:${mode}`, intervalMs, failFast)] : [])];
        await sleep(2000); // writes flow before anything happens
        const t0 = Date.now();
        const down = DISRUPT[mode].down(server).catch((e: Error) => e);
        await sleep(windowMs);
        const failed = await down;
        if (failed instanceof Error) throw new Error(`${mode} of ${old.name} failed: ${failed.message}`);
        if (DISRUPT[mode].lasting && !(await failedOverFrom(old))) {
            log(`${mode}: no other master named ${windowMs / 1000} s in (a split vote?): keeping the fault up to ${maxExtraMs / 1000} s more`);
            for (const until = Date.now() + maxExtraMs; Date.now() < until && !(await failedOverFrom(old)); ) await sleep(200);
        }
        const t1 = Date.now();
        await Promise.all(writers.map((w) => w.stop()));
        for (const c of clients) c.disconnect();
        await DISRUPT[mode].back(server);
        const newMaster = await healthy();
        log(`${mode}: new master ${newMaster}; checking what was acknowledged`);

        // Lost: acknowledged, but not on the master once the group is whole again.
        const reader = new Redis({ ...target.sentinelClient, lazyConnect: true });
        reader.on("error", () => undefined);
        await reader.connect();
        const paths: PathResult[] = [];
        for (const w of writers) paths.push({ ...w.result(t0, t1), lost: await w.lost(reader) });
        // Clean up, including writes that failed on our side but reached Redis (SCAN: KEYS is not the app user's).
        for (let cursor = "0"; ; ) {
            const [next, keys] = await reader.scan(cursor, "MATCH", `drill:${mode}:*`, "COUNT", 1000);
            if (keys.length > 0) await reader.del(...keys);
            if ((cursor = next) === "0") break;
        }
        reader.disconnect();
        results.push({ mode, oldMaster: old.name, newMaster, faultSeconds: Math.round((t1 - t0) / 100) / 10, paths });
    }
    return results;
}

/** The results as a table of aligned columns. */
export function formatTable(results: ModeResult[]): string {
    const rows = [["mode", "fault (s)", "path", "no writes for (s)", "attempted", "acknowledged", "failed", "lost", "master"]];
    for (const r of results) {
        for (const p of r.paths) {
            rows.push([r.mode, r.faultSeconds.toFixed(1), p.path, p.outageSeconds.toFixed(1), String(p.attempted), String(p.acknowledged), String(p.failed), String(p.lost), `${r.oldMaster} -> ${r.newMaster}`]);
        }
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    return rows.map((row) => row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}
