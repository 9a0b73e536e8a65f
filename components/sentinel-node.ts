// SentinelNode: redis-sentinel on one node. sentinel.conf is written at creation and then
// belongs to Sentinel; later runs apply timings, quorum and auth with SENTINEL SET.
// See assets/sentinel-node.sh.
import * as pulumi from "@pulumi/pulumi";
import { script } from "./assets";
import { ownOptions } from "./component-options";
import type { NodeConfig, ResolvedConfig } from "./config";
import { type ClusterSecrets, metricsSecret } from "./redis-node";
import { ConnectionArgs, RemoteCommand } from "./remote-command";
import { rotatingSecretLines } from "./rotation";
import type { Runtime } from "./runtime";
import { sentinelNodeEnv } from "./render";

export interface SentinelNodeArgs {
    cfg: ResolvedConfig;
    node: NodeConfig;
    connection: ConnectionArgs;
    secrets: ClusterSecrets;
    runtime: Runtime;
    /** With docker: what the container waits for before a replacement (see container-gate.ts). */
    after?: pulumi.Input<pulumi.Resource[]>;
    /** With tls.enabled: the end of the node's certificate; a renewal changes it, and the sentinel then loads the new one. */
    certUntil?: pulumi.Input<string>;
}

export class SentinelNode extends pulumi.ComponentResource {
    readonly command: RemoteCommand;
    /** What dependants wait for: the command, or with a container runtime, the container. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: SentinelNodeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:index:SentinelNode", name, {}, ownOptions(opts));
        const { cfg, node, secrets } = args;
        this.command = new RemoteCommand(
            `${name}-sentinel`,
            {
                connection: args.connection,
                create: script("sentinel-node.sh", { START_HOOK: script("hooks/sentinel-start.sh") }, { STEP: "create" }),
                update: script("sentinel-node.sh", { START_HOOK: script("hooks/sentinel-start.sh") }, { STEP: "update" }),
                delete: script("sentinel-node-remove.sh"),
                environment: { ...sentinelNodeEnv(cfg, node), ...args.runtime.scriptEnv, ...(args.certUntil ? { TLS_CERT_UNTIL: args.certUntil } : {}) },
                stdin: rotatingSecretLines({ admin: secrets.admin, sentinel: secrets.sentinelAuth, discovery: secrets.sentinel, ...metricsSecret(cfg, secrets) }, secrets.previous, {
                    admin: "adminPassword",
                    sentinel: "sentinelAuthPassword",
                    discovery: "sentinelPassword",
                }),
                // The group's name is fixed once sentinels monitor it: a new name is a new sentinel.
                triggers: [cfg.sentinel.masterName],
            },
            // The component's dependsOn is its children's (ownOptions).
            { parent: this, dependsOn: opts?.dependsOn },
        );
        this.ready = args.runtime.start("sentinel", node, this.command, this, args.after) ?? this.command;
        this.registerOutputs({});
    }
}
