// SentinelAgreement: a dynamic resource that waits, with ioredis, until the Redis group is in
// the state dependants need, and records what it found. This first version checks that every
// node's Redis answers an authenticated ROLE and INFO; the sentinel checks (same master on
// every sentinel, CKQUORUM, replicas linked) build on it. It never runs during preview.
import * as pulumi from "@pulumi/pulumi";

export interface AgreementNode {
    name: string;
    host: string;
    port: number;
}

export interface SentinelAgreementArgs {
    nodes: pulumi.Input<pulumi.Input<AgreementNode>[]>;
    /** Password Redis asks for; kept out of the resource's outputs. */
    password: pulumi.Input<string>;
    /** Give up after this many seconds, naming the node that did not answer. Default 60. */
    timeoutSeconds?: pulumi.Input<number>;
}

/** What one node said. */
export interface NodeReport {
    name: string;
    address: string;
    role: string;
    version: string;
    connectedReplicas: number;
}

interface Inputs {
    nodes: AgreementNode[];
    password: string;
    timeoutSeconds?: number;
    providerVersion: string;
}

interface Outputs {
    nodes: AgreementNode[];
    timeoutSeconds?: number;
    providerVersion: string;
    reports: NodeReport[];
    masters: string[];
}

const PROVIDER_VERSION = "1";

/** Asks every node until all answer or the time is up. Self-contained: serialized into the provider. */
async function survey(inputs: Inputs): Promise<NodeReport[]> {
    const Redis = require("ioredis") as typeof import("ioredis").default;
    const timeout = (inputs.timeoutSeconds ?? 60) * 1000;
    const deadline = Date.now() + timeout;

    const ask = async (n: AgreementNode): Promise<NodeReport> => {
        const client = new Redis({
            host: n.host,
            port: n.port,
            password: inputs.password,
            lazyConnect: true,
            connectTimeout: 3000,
            maxRetriesPerRequest: 0,
            retryStrategy: () => null,
            enableOfflineQueue: false,
        });
        client.on("error", () => undefined); // reported through the rejected command instead
        try {
            await client.connect();
            const role = (await client.call("ROLE")) as unknown[];
            const info = await client.info("server");
            const version = /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
            const replicas = role[0] === "master" && Array.isArray(role[2]) ? role[2].length : 0;
            return { name: n.name, address: `${n.host}:${n.port}`, role: String(role[0]), version, connectedReplicas: replicas };
        } finally {
            client.disconnect();
        }
    };

    const pending = new Map(inputs.nodes.map((n) => [n.name, n]));
    const reports = new Map<string, NodeReport>();
    const lastError = new Map<string, string>();
    for (;;) {
        await Promise.all(
            [...pending.values()].map(async (n) => {
                try {
                    reports.set(n.name, await ask(n));
                    pending.delete(n.name);
                } catch (e) {
                    lastError.set(n.name, (e as Error).message);
                }
            }),
        );
        if (pending.size === 0) break;
        if (Date.now() > deadline) {
            const who = [...pending.values()].map((n) => `${n.name} (${n.host}:${n.port}): ${lastError.get(n.name)}`);
            throw new Error(`Redis did not answer within ${timeout / 1000} s on ${who.join("; ")}`);
        }
        await new Promise((r) => setTimeout(r, 1000));
    }
    return inputs.nodes.map((n) => reports.get(n.name)!);
}

const provider: pulumi.dynamic.ResourceProvider<Inputs, Outputs> = {
    async diff(_id: string, olds: Outputs, news: Inputs) {
        const changed =
            JSON.stringify(olds.nodes) !== JSON.stringify(news.nodes) ||
            olds.timeoutSeconds !== news.timeoutSeconds ||
            olds.providerVersion !== news.providerVersion;
        return { changes: changed };
    },

    async create(inputs: Inputs) {
        const reports = await survey(inputs);
        const { password: _password, ...kept } = inputs;
        return {
            id: `agreement-${Date.now().toString(36)}`,
            outs: { ...kept, reports, masters: reports.filter((r) => r.role === "master").map((r) => r.name) },
        };
    },

    async update(_id: string, _olds: Outputs, news: Inputs) {
        const reports = await survey(news);
        const { password: _password, ...kept } = news;
        return { outs: { ...kept, reports, masters: reports.filter((r) => r.role === "master").map((r) => r.name) } };
    },
};

/** Waits until the Redis group answers as expected; outputs what each node reported. */
export class SentinelAgreement extends pulumi.dynamic.Resource {
    declare readonly reports: pulumi.Output<NodeReport[]>;
    declare readonly masters: pulumi.Output<string[]>;

    constructor(name: string, args: SentinelAgreementArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            provider,
            name,
            {
                nodes: args.nodes,
                password: pulumi.secret(args.password),
                timeoutSeconds: args.timeoutSeconds,
                providerVersion: PROVIDER_VERSION,
                reports: undefined,
                masters: undefined,
            },
            opts,
        );
    }
}
