// MetricsExporter (metrics.enabled): Debian's prometheus-redis-exporter on one node, listening on
// the node's private address only, reading its Redis and its Sentinel as the ACL user `metrics`.
// See assets/metrics-exporter.sh.
import * as pulumi from "@pulumi/pulumi";
import { script } from "./assets";
import type { NodeConfig, ResolvedConfig } from "./config";
import { ConnectionArgs, RemoteCommand, secretLines } from "./remote-command";
import type { PackageSet } from "./server-prep";

/** The exporter's package; its unit must not start with Debian's defaults (every address, no password). */
export const METRICS_PACKAGE_SET: PackageSet = { set: "metrics", packages: ["prometheus-redis-exporter"], heldUnits: ["prometheus-redis-exporter"] };

/** What Prometheus scrapes on one node: its Redis, and its Sentinel through the exporter's /scrape. */
export interface MetricsTargets {
    node: string;
    redis: string;
    sentinel: string;
}

/** The scrape URLs of a node's exporter. */
export function metricsTargets(cfg: ResolvedConfig, node: NodeConfig): MetricsTargets {
    const base = `http://${node.privateIp}:${cfg.metrics.port}`;
    return { node: node.name, redis: `${base}/metrics`, sentinel: `${base}/scrape?target=redis://127.0.0.1:${cfg.sentinel.port}` };
}

export interface MetricsExporterArgs {
    cfg: ResolvedConfig;
    node: NodeConfig;
    connection: ConnectionArgs;
    metricsPassword: pulumi.Input<string>;
}

export class MetricsExporter extends pulumi.ComponentResource {
    readonly targets: MetricsTargets;

    /** opts.dependsOn: the node's Redis and Sentinel (which hold the `metrics` user) and its package install. */
    constructor(name: string, args: MetricsExporterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:index:MetricsExporter", name, {}, opts);
        const { cfg, node, connection } = args;
        const set = METRICS_PACKAGE_SET;
        const packages = new RemoteCommand(
            `${name}-metrics-packages`,
            {
                connection,
                create: script("packages.sh"),
                delete: script("packages-remove.sh"),
                environment: { PACKAGES: set.packages.join(" "), PACKAGE_SET: set.set, HOLD_UNITS: set.heldUnits!.join(" ") },
            },
            { parent: this, dependsOn: opts?.dependsOn },
        );
        new RemoteCommand(
            `${name}-metrics`,
            {
                connection,
                create: script("metrics-exporter.sh"),
                delete: script("metrics-exporter-remove.sh"),
                environment: { SELF_IP: node.privateIp, METRICS_PORT: String(cfg.metrics.port), REDIS_PORT: String(cfg.redis.port), SENTINEL_PORT: String(cfg.sentinel.port) },
                stdin: secretLines({ metrics: args.metricsPassword }),
            },
            { parent: this, dependsOn: [packages] },
        );
        this.targets = metricsTargets(cfg, node);
        this.registerOutputs({ targets: this.targets });
    }
}
