// SettingsGuard: refuses, at preview, changes this stack cannot make in place on a live cluster,
// each with the way to do it. The check runs in the provider's diff, which the engine calls during
// preview, before any server is touched.
//   - runtime (packages <-> docker): both kinds would run on the same data directories;
//   - redis.server (redis <-> valkey): every node would restart as the other server, on its own
//     (empty) data directory;
//   - sentinel.masterName, redis.port, sentinel.port: clients and every sentinel know the group
//     by them, and Sentinel cannot move a monitored group to another name or port;
//   - tls.enabled: every client, replica and sentinel would have to switch at the same moment;
//   - a node's privateIp on the same server, or an address handed from one node name to another:
//     the sentinels would keep the old address. (A new host with a new address is a replacement
//     of the node: allowed, see README "Day 2".)
import * as pulumi from "@pulumi/pulumi";
import { recordedServer, type ResolvedConfig } from "./config";

interface Inputs {
    runtime: string;
    /** Absent in stacks from before there was a choice: redis. */
    server?: string;
    /** Absent in stacks from before these were guarded: recorded at the next run. */
    masterName?: string;
    redisPort?: number;
    sentinelPort?: number;
    /** Recorded when true only: absent in stacks without TLS (and from before it). */
    tls?: boolean;
    /** Per node name: its SSH host and private address. */
    addresses?: Record<string, { host: string; privateIp: string }>;
}

/** Why `news` cannot follow `olds` in place, one paragraph each. Self-contained: serialized into the provider. */
export function refusals(olds: Inputs, news: Inputs): string[] {
    const recreate =
        "re-create the cluster keeping its data (README \"Day 2\"): pulumi destroy (the data stays on the servers unless redis.purgeDataOnDestroy), " +
        "then pulumi up with the new value; the master is then the node holding the newest data.";
    const out: string[] = [];
    if (olds.runtime !== news.runtime) {
        out.push(
            `redis-ha:runtime changed from ${olds.runtime} to ${news.runtime}, which this stack does not do in place: ` +
                `set it back to ${olds.runtime}, or migrate as README "Switching runtimes" explains (pulumi destroy keeps the data, then pulumi up with the new runtime).`,
        );
    }
    if ((olds.server ?? "redis") !== (news.server ?? "redis")) {
        const was = olds.server ?? "redis";
        out.push(
            `redis-ha:redis.server changed from ${was} to ${news.server ?? "redis"}, which a live cluster cannot take (each node would come back as the other server, without the data): ` +
                `set it back to ${was}, or move as README "Choosing the server" explains (a new stack on other servers beside this one, the data copied over, clients switched to its outputs).`,
        );
    }
    const fixed: [string, unknown, unknown][] = [
        ["sentinel.masterName", olds.masterName, news.masterName],
        ["redis.port", olds.redisPort, news.redisPort],
        ["sentinel.port", olds.sentinelPort, news.sentinelPort],
    ];
    for (const [key, was, now] of fixed) {
        if (was !== undefined && was !== now) {
            out.push(`redis-ha:${key} changed from ${was} to ${now}, which a live cluster cannot take (clients and every sentinel know the group by it): set it back to ${was}, or ${recreate}`);
        }
    }
    if ((olds.tls ?? false) !== (news.tls ?? false)) {
        const [was, now] = [olds.tls ?? false, news.tls ?? false];
        out.push(
            `redis-ha:tls.enabled changed from ${was} to ${now}, which a live cluster cannot take in place (Redis, its replicas, the sentinels, the proxy and every client would have to switch at the same moment): ` +
                `set it back to ${was}, or ${now ? "move to TLS" : "move off TLS"} as README "TLS" explains: either a new stack on other servers beside this one, the data copied over, clients switched to its outputs; or, with downtime, ${recreate}`,
        );
    }
    const twoRuns = (name: string) =>
        `do it in two runs: remove ${name} from redis-ha:nodes and pulumi up (the sentinels forget it and the server is left without our services), then add it with its new settings and pulumi up (it joins as a replica).`;
    for (const [name, now] of Object.entries(news.addresses ?? {})) {
        const was = olds.addresses?.[name];
        if (was && was.host === now.host && was.privateIp !== now.privateIp) {
            out.push(`redis-ha:nodes (${name}): privateIp changed from ${was.privateIp} to ${now.privateIp} on the same server (${now.host}), which the sentinels would not follow: ${twoRuns(name)}`);
        }
        const previous = Object.entries(olds.addresses ?? {}).find(([other, a]) => other !== name && a.privateIp === now.privateIp && !news.addresses?.[other]);
        if (previous && !was) {
            out.push(`redis-ha:nodes: ${now.privateIp} was node ${previous[0]} and is now node ${name}: a node is not renamed in place; ${twoRuns(previous[0])}`);
        }
    }
    return out;
}

const provider: pulumi.dynamic.ResourceProvider<Inputs, Inputs> = {
    async diff(_id: string, olds: Inputs, news: Inputs) {
        const refused = refusals(olds, news);
        if (refused.length > 0) throw new Error(refused.join("\n"));
        return { changes: JSON.stringify(olds) !== JSON.stringify(news) };
    },
    async create(inputs: Inputs) {
        return { id: `runtime-${inputs.runtime}`, outs: inputs };
    },
    async update(_id: string, _olds: Inputs, news: Inputs) {
        return { outs: news };
    },
};

/** What the guard records of the config. */
export function guardedSettings(cfg: ResolvedConfig, runtime: string): Inputs {
    return {
        runtime,
        ...recordedServer(cfg.redis.server),
        masterName: cfg.sentinel.masterName,
        redisPort: cfg.redis.port,
        sentinelPort: cfg.sentinel.port,
        ...(cfg.tls.enabled ? { tls: true } : {}),
        addresses: Object.fromEntries(cfg.nodes.map((n) => [n.name, { host: n.host, privateIp: n.privateIp }])),
    };
}

export class SettingsGuard extends pulumi.dynamic.Resource {
    /** `after`: the guard (and so every step) waits for it, and fails with it. */
    constructor(name: string, settings: Inputs, after: pulumi.Output<unknown>, opts?: pulumi.CustomResourceOptions) {
        super(provider, name, { ...settings, runtime: after.apply(() => settings.runtime) }, opts);
    }
}
