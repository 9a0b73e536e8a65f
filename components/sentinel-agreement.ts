// SentinelAgreement: a dynamic resource that waits, with ioredis, until the Sentinel group is
// healthy, so that dependants only proceed then:
//   - every sentinel answers and all name the same master, one of our nodes;
//   - SENTINEL CKQUORUM passes on every sentinel;
//   - every sentinel knows the expected numbers of other sentinels and of replicas;
//   - every replica reports master_link_status:up towards that master.
// It logs what it is waiting for, fails after a timeout naming the sentinel or node that
// disagrees and what it said, and outputs the agreed master. It runs at creation and whenever
// a node's command ran again (their run ids are inputs), never during preview. Passwords are
// inputs only, kept out of its outputs.
import * as pulumi from "@pulumi/pulumi";
import { engineLog } from "./provider-log";
import { failFastClient } from "./redis-client";

export interface Endpoint {
    name: string;
    host: string;
    port: number;
}

export interface SentinelAgreementArgs {
    masterName: pulumi.Input<string>;
    sentinels: pulumi.Input<pulumi.Input<Endpoint>[]>;
    /** The Redis of every node; all but the master must be linked replicas. */
    redis: pulumi.Input<pulumi.Input<Endpoint>[]>;
    /** Password of the user `admin` of Redis and of Sentinel: CKQUORUM, SENTINEL MASTER, INFO replication. */
    adminPassword: pulumi.Input<string>;
    /** Give up after this many seconds. */
    timeoutSeconds: pulumi.Input<number>;
    /** Changes whenever a node was (re)configured, so that the group is checked again then. */
    revisions: pulumi.Input<pulumi.Input<string>[]>;
}

export interface AgreementInputs {
    masterName: string;
    sentinels: Endpoint[];
    redis: Endpoint[];
    adminPassword: string;
    timeoutSeconds: number;
    revisions: string[];
    providerVersion: string;
}

type Kept = Omit<AgreementInputs, "adminPassword">;

interface Outputs extends Kept {
    master: Endpoint;
    replicas: string[];
    waitedSeconds: number;
}

const PROVIDER_VERSION = "2";

/** Waits until the group agrees; returns the master and the replicas. Self-contained: serialized into the provider. */
export async function awaitAgreement(inputs: AgreementInputs): Promise<{ master: Endpoint; replicas: string[]; waitedSeconds: number }> {
    const started = Date.now();
    const deadline = started + inputs.timeoutSeconds * 1000;
    const expected = inputs.sentinels.length - 1;

    const progress = engineLog("sentinel agreement");

    const connect = (e: Endpoint, auth: { username?: string; password: string }) =>
        failFastClient({ host: e.host, port: e.port, connectTimeout: 2000, commandTimeout: 3000, ...auth });
    const pairs = (flat: unknown[]) => {
        const m: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) m[String(flat[i])] = String(flat[i + 1]);
        return m;
    };

    /** One look at the whole group: the master, or the first thing that is not right yet. */
    const look = async (): Promise<{ ok: true; master: Endpoint; replicas: string[] } | { ok: false; why: string }> => {
        const said = new Map<string, string>();
        for (const s of inputs.sentinels) {
            const c = connect(s, { username: "admin", password: inputs.adminPassword });
            try {
                await c.connect();
                const addr = (await c.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", inputs.masterName)) as string[] | null;
                if (!addr) return { ok: false, why: `sentinel ${s.name} (${s.host}:${s.port}) does not monitor ${inputs.masterName}` };
                said.set(s.name, `${addr[0]}:${addr[1]}`);
                const ck = String(await c.call("SENTINEL", "CKQUORUM", inputs.masterName).catch((e: Error) => e.message));
                if (!ck.startsWith("OK")) return { ok: false, why: `sentinel ${s.name} fails CKQUORUM: ${ck}` };
                const m = pairs((await c.call("SENTINEL", "MASTER", inputs.masterName)) as unknown[]);
                if (Number(m["num-other-sentinels"]) !== expected) {
                    return { ok: false, why: `sentinel ${s.name} knows ${m["num-other-sentinels"]} other sentinels, expected ${expected}` };
                }
                const replicas = ((await c.call("SENTINEL", "REPLICAS", inputs.masterName)) as unknown[][]).map(pairs);
                const healthy = replicas.filter((r) => !/s_down|o_down|disconnected/.test(r.flags ?? ""));
                if (healthy.length !== inputs.redis.length - 1) {
                    const seen = replicas.map((r) => `${r.ip}:${r.port} [${r.flags}]`).join(", ") || "none";
                    return { ok: false, why: `sentinel ${s.name} sees ${healthy.length} healthy replicas, expected ${inputs.redis.length - 1} (it knows: ${seen})` };
                }
            } catch (e) {
                return { ok: false, why: `sentinel ${s.name} (${s.host}:${s.port}) does not answer: ${(e as Error).message}` };
            } finally {
                c.disconnect();
            }
        }
        const answers = [...new Set(said.values())];
        if (answers.length !== 1) {
            return { ok: false, why: `sentinels disagree on the master: ${[...said].map(([n, a]) => `${n} says ${a}`).join(", ")}` };
        }
        const [host, port] = answers[0].split(":");
        const master = inputs.redis.find((r) => r.host === host && r.port === Number(port));
        if (!master) return { ok: false, why: `sentinels name ${answers[0]} as master, which is none of our nodes` };
        const replicas: string[] = [];
        for (const r of inputs.redis.filter((x) => x !== master)) {
            const c = connect(r, { username: "admin", password: inputs.adminPassword });
            try {
                await c.connect();
                const info = await c.info("replication");
                const field = (k: string) => new RegExp(`^${k}:(.*)$`, "m").exec(info)?.[1]?.trim();
                if (field("role") !== "slave" || field("master_host") !== master.host || field("master_link_status") !== "up") {
                    return {
                        ok: false,
                        why: `${r.name} is not a linked replica of ${master.name} yet: role ${field("role")}, master ${field("master_host")}, link ${field("master_link_status")}`,
                    };
                }
                replicas.push(r.name);
            } catch (e) {
                return { ok: false, why: `${r.name} (${r.host}:${r.port}) does not answer: ${(e as Error).message}` };
            } finally {
                c.disconnect();
            }
        }
        return { ok: true, master, replicas };
    };

    let last = "";
    let lastLogged = 0;
    for (;;) {
        const result = await look();
        if (result.ok) {
            const waitedSeconds = Math.round((Date.now() - started) / 100) / 10;
            progress(`${inputs.sentinels.length} sentinels agree: master ${result.master.name}, replicas ${result.replicas.join(", ")} (after ${waitedSeconds} s)`);
            return { master: result.master, replicas: result.replicas, waitedSeconds };
        }
        if (Date.now() > deadline) {
            throw new Error(`the sentinels did not agree within ${inputs.timeoutSeconds} s: ${result.why}`);
        }
        if (result.why !== last || Date.now() - lastLogged > 10000) {
            progress(`waiting: ${result.why}`);
            last = result.why;
            lastLogged = Date.now();
        }
        await new Promise((r) => setTimeout(r, 500));
    }
}

const provider: pulumi.dynamic.ResourceProvider<AgreementInputs, Outputs> = {
    async diff(_id: string, olds: Outputs, news: AgreementInputs) {
        const keys = ["masterName", "sentinels", "redis", "timeoutSeconds", "revisions", "providerVersion"] as const;
        return { changes: keys.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k])) };
    },

    async create(inputs: AgreementInputs) {
        const found = await awaitAgreement(inputs);
        const { adminPassword: _a, ...kept } = inputs;
        return { id: `${inputs.masterName}-agreement`, outs: { ...kept, ...found } };
    },

    async update(_id: string, _olds: Outputs, news: AgreementInputs) {
        const found = await awaitAgreement(news);
        const { adminPassword: _a, ...kept } = news;
        return { outs: { ...kept, ...found } };
    },
};

/** Waits until every sentinel agrees on the master and every replica is linked. */
export class SentinelAgreement extends pulumi.dynamic.Resource {
    declare readonly master: pulumi.Output<Endpoint>;
    declare readonly replicas: pulumi.Output<string[]>;
    declare readonly waitedSeconds: pulumi.Output<number>;

    constructor(name: string, args: SentinelAgreementArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            {
                ...args,
                adminPassword: pulumi.secret(args.adminPassword),
                providerVersion: PROVIDER_VERSION,
                master: undefined,
                replicas: undefined,
                waitedSeconds: undefined,
            },
            opts,
        );
    }
}
