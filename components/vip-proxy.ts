// VipProxy: HAProxy on the write and read VIPs, on one or more nodes. With several proxy nodes
// keepalived floats the VIPs between them; with one, they are static secondary addresses (and
// that node is a single point of failure: see README). See assets/vip-proxy.sh,
// components/proxy-config.ts and assets/haproxy-guard.lua for what the proxy checks.
import * as pulumi from "@pulumi/pulumi";
import { readAsset, script } from "./assets";
import type { ResolvedConfig } from "./config";
import type { Endpoint } from "./endpoint";
import { proxyPort, renderHaproxyConfig, renderKeepalivedConfig } from "./proxy-config";
import { frozenIf } from "./frozen";
import { ConnectionArgs, RemoteCommand } from "./remote-command";
import type { PackageSet } from "./server-prep";
import type { TlsClientOptions } from "./redis-client";
import { VipCheck } from "./vip-check";

/** The proxy's packages (socat talks to HAProxy's admin socket, saving server states before a reload). */
export const PROXY_PACKAGE_SET: PackageSet = { set: "proxy", packages: ["haproxy", "keepalived", "iputils-arping", "socat"] };

export interface VipProxyArgs {
    cfg: ResolvedConfig;
    /** How to reach each proxy node, by name. */
    connections: Map<string, ConnectionArgs>;
    /** What must be done on each proxy node first (its other package installs, at least). */
    after: Map<string, pulumi.Resource[]>;
    /**
     * What HAProxy's configuration waits for besides: every Redis and Sentinel with its users and
     * passwords (a rotated password must be known there before HAProxy logs in with it). Not a
     * dependency of the component, which would hold the package step back too.
     */
    configAfter: pulumi.Resource[];
    healthCheckPassword: pulumi.Input<string>;
    /** Password of the ACL user `app`, to check that the VIPs are served. */
    appPassword: pulumi.Input<string>;
    sentinelPassword: pulumi.Input<string>;
    statsPassword: pulumi.Input<string>;
    /** Proxy nodes marked down: their resources stay as they were (see frozen.ts). */
    down: string[];
    /** What the check that the VIPs are served waits for besides the proxies (the agreement). */
    checkAfter: pulumi.Resource[];
    /** With tls.enabled: the deployer's TLS options, for that check. */
    tls?: pulumi.Input<TlsClientOptions>;
    /** With tls.enabled: the end of each node's certificate, by name (see haproxy.cfg's first line). */
    certUntil?: (node: string) => pulumi.Input<string>;
}

export class VipProxy extends pulumi.ComponentResource {
    readonly write: Endpoint;
    readonly read: Endpoint;
    /** The stats page of each proxy node (user `admin`, the stats password). */
    readonly statsUrls: string[];
    readonly commands: RemoteCommand[];

    constructor(name: string, args: VipProxyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:index:VipProxy", name, {}, opts);
        const { cfg } = args;
        const px = cfg.proxy;
        const port = proxyPort(cfg);
        this.write = { host: px.writeVip!, port };
        this.read = { host: px.readVip!, port };
        const proxyNodes = px.nodes.map((n) => cfg.nodes.find((x) => x.name === n)!);
        this.statsUrls = proxyNodes.map((n) => `http://${n.privateIp}:${px.statsPort}/`);

        this.commands = proxyNodes.map((node, index) => {
            const connection = args.connections.get(node.name)!;
            const prepared = args.after.get(node.name) ?? [];
            // The packages install beside Redis and Sentinel; the configuration waits for them.
            const packages = new RemoteCommand(
                `${node.name}-proxy-packages`,
                {
                    connection,
                    create: script("packages.sh"),
                    delete: script("packages-remove.sh"),
                    environment: { PACKAGES: PROXY_PACKAGE_SET.packages.join(" "), PACKAGE_SET: PROXY_PACKAGE_SET.set },
                },
                { parent: this, dependsOn: prepared, ...frozenIf(args.down.includes(node.name)) },
            );
            // HAProxy reads node.pem (its checks' client certificate) only at start: a renewed
            // certificate changes this first line, and so reloads it.
            const haproxyCfg = pulumi
                .all([args.healthCheckPassword, args.sentinelPassword, args.statsPassword, args.certUntil?.(node.name) ?? ""])
                .apply(([healthCheck, sentinel, stats, until]) => (until ? `# node certificate valid until ${until}\n` : "") + renderHaproxyConfig(cfg, node, { healthCheck, sentinel, stats }));
            return new RemoteCommand(
                `${node.name}-vip-proxy`,
                {
                    connection,
                    create: script("vip-proxy.sh", { GUARD_LUA: readAsset("haproxy-guard.lua") }),
                    delete: script("vip-proxy-remove.sh"),
                    environment: {
                        SELF_IP: node.privateIp,
                        VIPS: `${px.writeVip} ${px.readVip}`,
                        PROXY_PORT: String(port),
                        KEEPALIVED_CONF: proxyNodes.length > 1 ? renderKeepalivedConfig(cfg, node, index) : "",
                    },
                    stdin: pulumi.secret(haproxyCfg),
                },
                { parent: this, dependsOn: [packages, ...prepared, ...args.configAfter], ...frozenIf(args.down.includes(node.name)) },
            );
        });
        // `pulumi up` ends when the VIPs are served, not when the last file was written.
        new VipCheck(
            `${name}-check`,
            { write: this.write, read: this.read, appPassword: args.appPassword, timeoutSeconds: 120, revisions: this.commands.map((c) => c.runId), tls: args.tls },
            { parent: this, dependsOn: [...this.commands, ...args.checkAfter] },
        );
        this.registerOutputs({ write: this.write, read: this.read, statsUrls: this.statsUrls });
    }
}
