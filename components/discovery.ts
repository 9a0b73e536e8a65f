// Asks the running sentinels which node is master, while the program runs (preview too): the
// stack outputs then name the current master, not the one in the config or the one at the last
// change. Read-only (Sentinel's `discovery` user), short timeouts; no answer (a new cluster)
// gives undefined. The end-to-end tests ask the same way, and so do the providers that need a
// sentinel majority (the master election, the membership): it is self-contained.
import type { Endpoint } from "./endpoint";
import { failFastClient, type TlsClientOptions } from "./redis-client";

export interface DiscoveryOptions {
    /** How many sentinels must name the master; fewer: undefined. Default 1 (the answer most give). */
    minVotes?: number;
    /** More than half of the sentinels asked must name it (instead of minVotes). */
    majority?: boolean;
    /** Sentinel's user to ask as. Default: discovery. */
    username?: string;
    /** Milliseconds to connect, and for the answer. Default 1500. */
    timeoutMs?: number;
    /** With tls.enabled: what the connection needs. */
    tls?: TlsClientOptions;
}

/** The master most sentinels name (each asked as `discovery`, or opts.username, with `password`), or undefined. */
export async function discoverMaster(sentinels: Endpoint[], masterName: string, password: string, opts: DiscoveryOptions = {}): Promise<Endpoint | undefined> {
    const timeout = opts.timeoutMs ?? 1500;
    const answers = await Promise.all(
        sentinels.map(async (s) => {
            const client = failFastClient({ host: s.host, port: s.port, username: opts.username ?? "discovery", password, connectTimeout: timeout, commandTimeout: timeout, tls: opts.tls });
            try {
                await client.connect();
                const addr = (await client.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)) as string[] | null;
                return addr ? `${addr[0]}:${addr[1]}` : undefined;
            } catch {
                return undefined;
            } finally {
                client.disconnect();
            }
        }),
    );
    const votes = new Map<string, number>();
    for (const a of answers) if (a) votes.set(a, (votes.get(a) ?? 0) + 1);
    const best = [...votes].sort((x, y) => y[1] - x[1])[0];
    const needed = opts.majority ? Math.floor(sentinels.length / 2) + 1 : (opts.minVotes ?? 1);
    if (!best || best[1] < needed) return undefined;
    const [host, port] = best[0].split(":");
    return { host, port: Number(port) };
}
