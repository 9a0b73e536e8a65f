// A planned failover that loses no acknowledged write. Sentinel's own SENTINEL FAILOVER promotes
// a replica while the old master still takes writes, and those are lost when it becomes a replica
// (measured: 45 of 2091 in a shrink). So: the master stops taking writes (CLIENT PAUSE WRITE;
// clients wait), the replicas catch up with its offset, Sentinel fails over, and once the old
// master has become a replica it is unpaused: what it held back then fails (READONLY) instead of
// being acknowledged and lost. It returns when every sentinel has settled on the new master.
// Self-contained: serialized into the providers that use it.
import type Redis from "ioredis";
import { asAdmin } from "./redis-client";
import { engineLog } from "./provider-log";
import { type Look, waitUntil } from "./waiter";

export interface Instance {
    name: string;
    ip: string;
    port: number;
}

export interface PlannedFailover {
    masterName: string;
    /** The sentinels to ask, in order, to fail over. */
    sentinels: Instance[];
    master: Instance;
    /** The replicas that must have everything the master acknowledged before the switch. */
    replicas: Instance[];
    adminPassword: string;
    timeoutSeconds: number;
    /** Done when every sentinel monitors the new master, no failover in progress. */
    settled: () => Promise<Look<{ addr: string }>>;
}

/** Hands the master role over (see the top of this file); returns how long writes were held. */
export async function plannedFailover(p: PlannedFailover): Promise<{ addr: string; pausedSeconds: number }> {
    const log = engineLog("planned failover");
    const ask = <T>(i: Instance, f: (c: Redis) => Promise<T>) => asAdmin(i.ip, i.port, p.adminPassword, f);
    const field = (info: string, key: string) => Number(new RegExp(`^${key}:(\\d+)`, "m").exec(info)?.[1] ?? -1);

    // The pause ends by itself if this process dies: never longer than the whole wait.
    await ask(p.master, (c) => c.call("CLIENT", "PAUSE", String(p.timeoutSeconds * 1000), "WRITE"));
    const paused = Date.now();
    try {
        const offset = field(await ask(p.master, (c) => c.info("replication")), "master_repl_offset");
        await waitUntil({
            what: "planned failover",
            failure: `the replicas did not catch up with ${p.master.name}`,
            timeoutSeconds: 10,
            look: async (): Promise<Look<object>> => {
                for (const r of p.replicas) {
                    const at = field(await ask(r, (c) => c.info("replication")).catch(() => ""), "slave_repl_offset");
                    if (at < offset) return { done: false, why: `${r.name} is at offset ${at}, the master at ${offset}` };
                }
                return { done: true, found: {}, says: `the replicas have everything ${p.master.name} acknowledged (offset ${offset})` };
            },
        });
        let asked = false;
        for (const s of p.sentinels) {
            if (asked) break;
            asked = await ask(s, (c) => c.call("SENTINEL", "FAILOVER", p.masterName)).then(
                () => true,
                (e: Error) => (log(`sentinel ${s.name} refused the failover: ${e.message}`), false),
            );
        }
        if (!asked) throw new Error(`no sentinel would fail over away from ${p.master.name}: see the lines above`);
        // Writes resume on the old master as soon as it is a replica: they fail there (READONLY).
        let heldSeconds: number | undefined;
        const { addr } = await waitUntil({
            what: "planned failover",
            failure: `the master did not move away from ${p.master.name}`,
            timeoutSeconds: p.timeoutSeconds,
            look: async () => {
                if (heldSeconds === undefined && (await ask(p.master, (c) => c.call("ROLE") as Promise<unknown[]>).catch(() => []))[0] === "slave") {
                    await ask(p.master, (c) => c.call("CLIENT", "UNPAUSE"));
                    heldSeconds = Math.round((Date.now() - paused) / 100) / 10;
                }
                return p.settled();
            },
        });
        return { addr, pausedSeconds: heldSeconds ?? Math.round((Date.now() - paused) / 100) / 10 };
    } finally {
        await ask(p.master, (c) => c.call("CLIENT", "UNPAUSE")).catch(() => undefined);
    }
}
