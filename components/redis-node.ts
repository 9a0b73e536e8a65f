// RedisNode: redis-server on one node. The first run writes redis.conf with the replication
// decided then (a replica of the master the sentinels name; with no sentinel majority, on its
// own until the master election); later runs change settings at runtime only, so a re-run never
// undoes a failover. See assets/redis-node.sh.
import * as pulumi from "@pulumi/pulumi";
import { script } from "./assets";
import { ownOptions } from "./component-options";
import type { NodeConfig, ResolvedConfig } from "./config";
import type { PreviousPasswords } from "./cluster-args";
import { ConnectionArgs, RemoteCommand } from "./remote-command";
import { rotatingSecretLines } from "./rotation";
import type { Runtime } from "./runtime";
import { redisNodeEnv } from "./render";

/** The passwords of the cluster, each a secret; healthCheck and stats only with a proxy. */
export interface ClusterSecrets {
    admin: pulumi.Input<string>;
    replication: pulumi.Input<string>;
    sentinelAuth: pulumi.Input<string>;
    sentinel: pulumi.Input<string>;
    app: pulumi.Input<string>;
    healthCheck?: pulumi.Input<string>;
    stats?: pulumi.Input<string>;
    /** With metrics.enabled: the exporter's user on Redis and Sentinel. */
    metrics?: pulumi.Input<string>;
    /** The passwords being retired: still accepted (see rotation.ts). */
    previous: pulumi.Input<PreviousPasswords>;
}

/** The config key of each user's password, as redis-node.sh's stdin names them. */
const REDIS_USER_KEYS = {
    admin: "adminPassword",
    replication: "replicationPassword",
    sentinel: "sentinelAuthPassword",
    app: "appPassword",
    discovery: "sentinelPassword",
    healthcheck: "healthCheckPassword",
} as const;

export interface RedisNodeArgs {
    cfg: ResolvedConfig;
    node: NodeConfig;
    connection: ConnectionArgs;
    secrets: ClusterSecrets;
    runtime: Runtime;
    /** With docker: what the container waits for before a replacement (see container-gate.ts). */
    after?: pulumi.Input<pulumi.Resource[]>;
    /** With tls.enabled: the CA, and this node's certificate and key (secret), installed by redis-node.sh. */
    tls?: pulumi.Input<NodeTls>;
}

export interface NodeTls {
    ca: string;
    cert: string;
    key: string;
}

/** The node's TLS files as stdin lines for redis-node.sh: each PEM base64 on one line. */
const tlsLines = (tls: pulumi.Input<NodeTls> | undefined): Record<string, pulumi.Input<string>> => {
    if (tls === undefined) return {};
    const b64 = (pick: (t: NodeTls) => string) => pulumi.output(tls).apply((t) => Buffer.from(pick(t)).toString("base64"));
    return { "tls-ca": b64((t) => t.ca), "tls-cert": b64((t) => t.cert), "tls-key": b64((t) => t.key) };
};

export class RedisNode extends pulumi.ComponentResource {
    readonly command: RemoteCommand;
    /** What dependants wait for: the command, or with a container runtime, the container. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: RedisNodeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:index:RedisNode", name, {}, ownOptions(opts));
        const { cfg, node, secrets } = args;
        this.command = new RemoteCommand(
            `${name}-redis`,
            {
                connection: args.connection,
                // The data survey runs before a first start; a create ignores leftovers of an earlier deployment.
                create: script("redis-node.sh", { DATA_SURVEY: script("data-survey.sh"), STOP_HOOK: script("hooks/redis-stop.sh") }, { STEP: "create" }),
                update: script("redis-node.sh", { DATA_SURVEY: script("data-survey.sh"), STOP_HOOK: script("hooks/redis-stop.sh") }, { STEP: "update" }),
                delete: script("redis-node-remove.sh"),
                environment: { ...redisNodeEnv(cfg, node), ...args.runtime.scriptEnv },
                stdin: rotatingSecretLines(
                    {
                        admin: secrets.admin,
                        replication: secrets.replication,
                        sentinel: secrets.sentinelAuth,
                        app: secrets.app,
                        discovery: secrets.sentinel,
                        ...(cfg.proxy.nodes.length > 0 && secrets.healthCheck ? { healthcheck: secrets.healthCheck } : {}),
                        ...metricsSecret(cfg, secrets),
                        ...tlsLines(args.tls),
                    },
                    secrets.previous,
                    REDIS_USER_KEYS,
                ),
            },
            // The component's dependsOn is its children's (ownOptions).
            { parent: this, dependsOn: opts?.dependsOn },
        );
        this.ready = args.runtime.start("redis", node, this.command, this, args.after) ?? this.command;
        this.registerOutputs({});
    }
}

/** The exporter's password as a `metrics` stdin line, with metrics.enabled (Redis and Sentinel both have the user). */
export const metricsSecret = (cfg: ResolvedConfig, secrets: ClusterSecrets): Record<string, pulumi.Input<string>> =>
    cfg.metrics.enabled && secrets.metrics ? { metrics: secrets.metrics } : {};
