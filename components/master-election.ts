// MasterElection: a dynamic resource between the Redis nodes and the sentinels. When no
// majority of sentinels names a master (a new cluster, or one re-created after `pulumi destroy`
// with its data still on the servers), the nodes that started this run are each on their own
// with the data they held (assets/redis-node.sh), and this picks the master:
//   - the master of the nodes that were already running, if any (they form the group);
//   - else the node with the newest data, from each node's survey of its disk (master-choice.ts):
//     `initialMaster` only when no node holds data, `recoverFrom` when the data cannot tell;
// then makes every other node its replica (REPLICAOF, CONFIG REWRITE). The sentinels then start
// monitoring the master the nodes follow. With a sentinel majority it does nothing: the nodes
// followed the sentinels already. Runs whenever a node's Redis command ran (run ids are inputs).
import * as pulumi from "@pulumi/pulumi";
import { discoverMaster } from "./discovery";
import { chooseMaster, type DataSurvey } from "./master-choice";
import { engineLog } from "./provider-log";
import type Redis from "ioredis";
import { asAdmin, refusedLogin, secretTls, type TlsClientOptions } from "./redis-client";
import { waitUntil } from "./waiter";
import type { Endpoint, NodeEndpoint } from "./endpoint";

/** A live node's Redis, with what its command printed at its last run. */
export interface ElectionNode extends NodeEndpoint {
    runId: string;
    /** redis-node.sh's JSON line: `initialized`, and `survey` when it started on its own. */
    stdout: string;
}

export interface ElectionInputs {
    masterName: string;
    /** Every member's sentinel (a majority of them must name the master for it to count). */
    sentinels: Endpoint[];
    nodes: ElectionNode[];
    initialMaster: string;
    recoverFrom?: string;
    adminPassword: string;
    /** With tls.enabled. */
    tls?: TlsClientOptions;
    providerVersion: string;
}

export interface ElectionResult {
    /** The master, and why it is the one. */
    master: string;
    why: string;
    /** The nodes made its replicas by this run. */
    joined: string[];
}

const PROVIDER_VERSION = "1";

/** Picks the master and makes the others its replicas (see the top of this file). Self-contained: serialized into the provider. */
export async function elect(inputs: ElectionInputs, previousRuns: Record<string, string>): Promise<ElectionResult> {
    const log = engineLog("master election");
    const ask = <T>(e: Endpoint, f: (c: Redis) => Promise<T>) => asAdmin(e.host, e.port, inputs.adminPassword, f, inputs.tls);

    // A sentinel majority is in charge (even of a master that is leaving: see membership.ts).
    const named = await discoverMaster(inputs.sentinels, inputs.masterName, inputs.adminPassword, { username: "admin", majority: true, timeoutMs: 5000, tls: inputs.tls });
    if (named) {
        const master = inputs.nodes.find((n) => n.host === named.host && n.port === named.port)?.name ?? `${named.host}:${named.port}`;
        return { master, why: `a majority of the ${inputs.sentinels.length} sentinels name ${master}`, joined: [] };
    }

    // Which nodes started on their own this run (their command ran since the last election and initialized).
    const parse = (n: ElectionNode) => JSON.parse(n.stdout) as { initialized?: boolean; survey?: DataSurvey | null };
    const started = inputs.nodes.filter((n) => previousRuns[n.name] !== n.runId && parse(n).initialized && parse(n).survey);
    const running = inputs.nodes.filter((n) => !started.includes(n));
    // A node's Redis may not listen yet: a container that just started does not wait for it.
    const roles = new Map<string, string[]>();
    await waitUntil({
        what: "master election",
        failure: "the Redis nodes did not answer",
        timeoutSeconds: 60,
        look: async () => {
            const silent: string[] = [];
            for (const n of inputs.nodes.filter((x) => !roles.has(x.name))) {
                try {
                    roles.set(n.name, (await ask(n, (c) => c.call("ROLE") as Promise<unknown[]>)).map(String));
                } catch (e) {
                    const [node, why] = [`${n.name} (${n.host}:${n.port})`, (e as Error).message];
                    if (refusedLogin(e)) throw new Error(`${node} refuses the admin user: ${why}`);
                    silent.push(`${node}: ${why}`);
                }
            }
            return silent.length === 0 ? { done: true, found: {}, says: `all ${inputs.nodes.length} nodes answer` } : { done: false, why: `no answer from ${silent.join("; ")}` };
        },
    });

    let choice: { master: string; why: string };
    if (running.length > 0) {
        const masters = running.filter((n) => roles.get(n.name)![0] === "master");
        if (masters.length !== 1) {
            throw new Error(
                `no sentinel majority names a master, and the nodes already running do not name one either (masters: ${masters.map((m) => m.name).join(", ") || "none"}); ` +
                    `check the sentinels (SENTINEL MASTER ${inputs.masterName}) and run pulumi up again`,
            );
        }
        choice = { master: masters[0].name, why: `no sentinel majority answers; ${masters[0].name} is the master of the nodes already running` };
    } else {
        choice = chooseMaster(
            started.map((n) => ({ name: n.name, survey: parse(n).survey! })),
            inputs.initialMaster,
            inputs.recoverFrom,
        );
    }
    const master = inputs.nodes.find((n) => n.name === choice.master)!;
    log(`${choice.master} is the master: ${choice.why}`);
    const joined: string[] = [];
    for (const n of inputs.nodes.filter((x) => x !== master)) {
        const role = roles.get(n.name)!;
        if (role[0] === "slave" && role[1] === master.host && Number(role[2]) === master.port) continue;
        await ask(n, async (c) => {
            await c.call("REPLICAOF", master.host, String(master.port));
            await c.call("CONFIG", "REWRITE");
        });
        log(`${n.name} replicates from ${master.name} now`);
        joined.push(n.name);
    }
    return { master: choice.master, why: choice.why, joined };
}

const runsOf = (nodes: ElectionNode[] | undefined) => Object.fromEntries((nodes ?? []).map((n) => [n.name, n.runId]));

const provider: pulumi.dynamic.ResourceProvider<ElectionInputs, Omit<ElectionInputs, "adminPassword" | "tls"> & ElectionResult> = {
    async diff(_id, olds, news) {
        const compared = ["masterName", "sentinels", "nodes", "initialMaster", "recoverFrom", "providerVersion"] as const;
        return { changes: compared.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k])) };
    },
    async create(inputs) {
        const { adminPassword: _a, tls: _t, ...kept } = inputs;
        return { id: `${inputs.masterName}-election`, outs: { ...kept, ...(await elect(inputs, {})) } };
    },
    async update(_id, olds, news) {
        const { adminPassword: _a, tls: _t, ...kept } = news;
        return { outs: { ...kept, ...(await elect(news, runsOf(olds.nodes))) } };
    },
};

export interface MasterElectionArgs {
    masterName: string;
    sentinels: Endpoint[];
    nodes: pulumi.Input<pulumi.Input<ElectionNode>[]>;
    initialMaster: string;
    recoverFrom?: string;
    adminPassword: pulumi.Input<string>;
    tls?: pulumi.Input<TlsClientOptions>;
}

/** Picks the master when no sentinel majority names one (see the top of this file). */
export class MasterElection extends pulumi.dynamic.Resource {
    declare readonly master: pulumi.Output<string>;
    declare readonly why: pulumi.Output<string>;

    constructor(name: string, args: MasterElectionArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            { ...args, adminPassword: pulumi.secret(args.adminPassword), ...secretTls(args.tls), providerVersion: PROVIDER_VERSION, master: undefined, why: undefined, joined: undefined },
            opts,
        );
    }
}
