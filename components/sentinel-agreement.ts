// SentinelAgreement: a dynamic resource that waits, with ioredis, until the Sentinel group is
// healthy, so that dependants only proceed then:
//   - every sentinel answers and all name the same master, one of our nodes;
//   - SENTINEL CKQUORUM passes on every sentinel;
//   - every sentinel sees every other live sentinel and every live replica healthy, and knows
//     none outside the config (nodes marked down may be known or not);
//   - every replica reports master_link_status:up towards that master.
// It logs what it is waiting for, fails after a timeout naming the sentinel or node that
// disagrees and what it said, and outputs the agreed master. It runs at creation and whenever
// a node's command ran again (their run ids are inputs), never during preview. Passwords are
// inputs only, kept out of its outputs.
import * as pulumi from "@pulumi/pulumi";
import type { Endpoint, NodeEndpoint } from "./endpoint";
import { failFastClient, fieldsOf, healthyFlags, secretTls, type TlsClientOptions } from "./redis-client";
import { type Look, waitingProvider, waitUntil } from "./waiter";

export interface SentinelAgreementArgs {
    masterName: pulumi.Input<string>;
    sentinels: pulumi.Input<pulumi.Input<NodeEndpoint>[]>;
    /** The Redis of every live node; all but the master must be linked replicas. */
    redis: pulumi.Input<pulumi.Input<NodeEndpoint>[]>;
    /** Nodes marked down: their sentinel and Redis may be known (as down) or not. Omitted when none. */
    down?: { sentinels: NodeEndpoint[]; redis: NodeEndpoint[] };
    /** Password of the user `admin` of Redis and of Sentinel: CKQUORUM, SENTINEL MASTER, INFO replication. */
    adminPassword: pulumi.Input<string>;
    /** Give up after this many seconds. */
    timeoutSeconds: pulumi.Input<number>;
    /** Changes whenever a node was (re)configured, so that the group is checked again then. */
    revisions: pulumi.Input<pulumi.Input<string>[]>;
    /** With tls.enabled: the deployer's TLS options. */
    tls?: pulumi.Input<TlsClientOptions>;
}

export interface AgreementInputs {
    masterName: string;
    sentinels: NodeEndpoint[];
    redis: NodeEndpoint[];
    down?: { sentinels: NodeEndpoint[]; redis: NodeEndpoint[] };
    adminPassword: string;
    timeoutSeconds: number;
    revisions: string[];
    /** With tls.enabled. */
    tls?: TlsClientOptions;
    providerVersion: string;
}

/** What the group agreed on. */
export interface Agreement {
    master: NodeEndpoint;
    replicas: string[];
}

const PROVIDER_VERSION = "2";

/** Waits until the group agrees; returns the master and the replicas. Self-contained: serialized into the provider. */
export async function awaitAgreement(inputs: AgreementInputs): Promise<Agreement & { waitedSeconds: number }> {
    /** "ip:port" of an endpoint, or of an entry of SENTINEL SENTINELS / REPLICAS. */
    const addr = (e: Endpoint | Record<string, string>) => `${"ip" in e ? e.ip : e.host}:${e.port}`;
    const known = {
        sentinels: new Set([...inputs.sentinels, ...(inputs.down?.sentinels ?? [])].map(addr)),
        redis: new Set([...inputs.redis, ...(inputs.down?.redis ?? [])].map(addr)),
    };

    const connect = (e: Endpoint, auth: { username?: string; password: string }) =>
        failFastClient({ host: e.host, port: e.port, connectTimeout: 2000, commandTimeout: 3000, ...auth, tls: inputs.tls });

    /** One look at the whole group: the master, or the first thing that is not right yet. */
    const look = async (): Promise<Look<Agreement>> => {
        const said = new Map<string, string>();
        for (const s of inputs.sentinels) {
            const c = connect(s, { username: "admin", password: inputs.adminPassword });
            try {
                await c.connect();
                const named = (await c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", inputs.masterName)) as string[] | null;
                if (!named) return { done: false, why: `sentinel ${s.name} (${s.host}:${s.port}) does not monitor ${inputs.masterName}` };
                said.set(s.name, `${named[0]}:${named[1]}`);
                const ck = String(await c.call("SENTINEL", "CKQUORUM", inputs.masterName).catch((e: Error) => e.message));
                if (!ck.startsWith("OK")) return { done: false, why: `sentinel ${s.name} fails CKQUORUM: ${ck}` };
                const peers = ((await c.call("SENTINEL", "SENTINELS", inputs.masterName)) as unknown[][]).map(fieldsOf);
                const replicas = ((await c.call("SENTINEL", "REPLICAS", inputs.masterName)) as unknown[][]).map(fieldsOf);
                const stranger = [...peers.filter((p) => !known.sentinels.has(addr(p))), ...replicas.filter((r) => !known.redis.has(addr(r)))][0];
                if (stranger) return { done: false, why: `sentinel ${s.name} knows ${addr(stranger)}, which is no node of the config (a SENTINEL RESET ${inputs.masterName} there forgets it)` };
                const unseenPeer = inputs.sentinels.find((o) => o !== s && !peers.some((p) => addr(p) === addr(o) && healthyFlags(p.flags)));
                if (unseenPeer) return { done: false, why: `sentinel ${s.name} does not see sentinel ${unseenPeer.name} (${addr(unseenPeer)}) healthy yet` };
                const master = `${named[0]}:${named[1]}`;
                const unseen = inputs.redis.find((r) => addr(r) !== master && !replicas.some((x) => addr(x) === addr(r) && healthyFlags(x.flags)));
                if (unseen) {
                    const seen = replicas.map((r) => `${addr(r)} [${r.flags}]`).join(", ") || "none";
                    return { done: false, why: `sentinel ${s.name} does not see replica ${unseen.name} healthy yet (it knows: ${seen})` };
                }
            } catch (e) {
                return { done: false, why: `sentinel ${s.name} (${s.host}:${s.port}) does not answer: ${(e as Error).message}` };
            } finally {
                c.disconnect();
            }
        }
        const answers = [...new Set(said.values())];
        if (answers.length !== 1) {
            return { done: false, why: `sentinels disagree on the master: ${[...said].map(([n, a]) => `${n} says ${a}`).join(", ")}` };
        }
        const [host, port] = answers[0].split(":");
        const master = inputs.redis.find((r) => r.host === host && r.port === Number(port));
        if (!master) return { done: false, why: `sentinels name ${answers[0]} as master, which is none of our nodes` };
        const replicas: string[] = [];
        for (const r of inputs.redis.filter((x) => x !== master)) {
            const c = connect(r, { username: "admin", password: inputs.adminPassword });
            try {
                await c.connect();
                const info = await c.info("replication");
                const field = (k: string) => new RegExp(`^${k}:(.*)$`, "m").exec(info)?.[1]?.trim();
                if (field("role") !== "slave" || field("master_host") !== master.host || field("master_link_status") !== "up") {
                    return {
                        done: false,
                        why: `${r.name} is not a linked replica of ${master.name} yet: role ${field("role")}, master ${field("master_host")}, link ${field("master_link_status")}`,
                    };
                }
                replicas.push(r.name);
            } catch (e) {
                return { done: false, why: `${r.name} (${r.host}:${r.port}) does not answer: ${(e as Error).message}` };
            } finally {
                c.disconnect();
            }
        }
        return { done: true, found: { master, replicas }, says: `${inputs.sentinels.length} sentinels agree: master ${master.name}, replicas ${replicas.join(", ")}` };
    };

    return waitUntil({ what: "sentinel agreement", failure: "the sentinels did not agree", timeoutSeconds: inputs.timeoutSeconds, look });
}

const provider = waitingProvider({
    id: (inputs: AgreementInputs) => `${inputs.masterName}-agreement`,
    compared: ["masterName", "sentinels", "redis", "down", "timeoutSeconds", "revisions", "providerVersion"],
    secrets: ["adminPassword", "tls"],
    wait: awaitAgreement,
});

/** Waits until every sentinel agrees on the master and every replica is linked. */
export class SentinelAgreement extends pulumi.dynamic.Resource {
    declare readonly master: pulumi.Output<NodeEndpoint>;
    declare readonly replicas: pulumi.Output<string[]>;
    declare readonly waitedSeconds: pulumi.Output<number>;

    constructor(name: string, args: SentinelAgreementArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            {
                ...args,
                adminPassword: pulumi.secret(args.adminPassword),
                ...secretTls(args.tls),
                providerVersion: PROVIDER_VERSION,
                master: undefined,
                replicas: undefined,
                waitedSeconds: undefined,
            },
            opts,
        );
    }
}
