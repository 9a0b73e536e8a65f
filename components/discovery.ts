// Asks the running sentinels which node is master, while the program runs (preview too): the
// stack outputs then name the current master, not the one in the config or the one at the last
// change. Read-only (Sentinel's `discovery` user), short timeouts; no answer (a new cluster)
// gives undefined.
import { failFastClient } from "./redis-client";

export interface Discovered {
    host: string;
    port: number;
    /** How many sentinels named this master, of how many asked. */
    votes: number;
    asked: number;
}

export async function discoverMaster(
    sentinels: { host: string; port: number }[],
    masterName: string,
    password: string,
): Promise<Discovered | undefined> {
    const answers = await Promise.all(
        sentinels.map(async (s) => {
            const client = failFastClient({ host: s.host, port: s.port, username: "discovery", password, connectTimeout: 1500, commandTimeout: 1500 });
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
    if (!best) return undefined;
    const [host, port] = best[0].split(":");
    return { host, port: Number(port), votes: best[1], asked: sentinels.length };
}
