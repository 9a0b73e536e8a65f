// RedisHaCluster: the whole deployment as one component. First every node must answer on its
// SSH port (reachability.ts) and the settings that cannot change in place must not have
// (settings-guard.ts). Per node: its SSH host key pinned, the deployer's SSH key authorised
// (ssh-key-rotation.ts), host preparation, then Redis; then the
// master election (with no sentinel majority, the node with the newest data); then Sentinel on
// every node; then the membership (leavers handed over, stopped and forgotten); then the
// rolling restart of the nodes that need one (rolling-restart.ts); then the agreement waiter;
// then the VIP proxy. Nodes marked down are left as they were (frozen.ts). With tls.enabled the
// certificates come first (cluster-tls.ts), and everything that connects speaks TLS.
// The runtime (packages or docker) decides how Redis and Sentinel run. Its outputs are what
// applications plug into their Redis clients (index.ts exports them for the stack).
import * as pulumi from "@pulumi/pulumi";
import { type ClusterArgs, resolveClusterArgs } from "./cluster-args";
import { discoverMaster } from "./discovery";
import type { Endpoint, NodeEndpoint } from "./endpoint";
import { RedisNode } from "./redis-node";
import { nodeSsh } from "./host-key";
import { SentinelAgreement } from "./sentinel-agreement";
import { SentinelNode } from "./sentinel-node";
import { type HostFacts, type KernelReport, ServerPrep } from "./server-prep";
import { METRICS_PACKAGE_SET, MetricsExporter, type MetricsTargets } from "./metrics-exporter";
import { PROXY_PACKAGE_SET, VipProxy } from "./vip-proxy";
import { DockerRuntime } from "./docker-runtime";
import { packagesRuntime, Runtime } from "./runtime";
import { guardedSettings, SettingsGuard } from "./settings-guard";
import { script } from "./assets";
import { type NodeConfig, recordedServer } from "./config";
import { frozenIf } from "./frozen";
import { MasterElection } from "./master-election";
import { Membership } from "./membership";
import { unreachableMessage, unreachableNodes } from "./reachability";
import { rollingEnv } from "./render";
import { RollingRestart } from "./rolling-restart";
import { sshKeyRotation } from "./ssh-key-rotation";
import { ContainerGate, rollingOrder } from "./container-gate";
import type { TlsClientOptions } from "./redis-client";
import { clusterTls } from "./cluster-tls";

export type { ClusterArgs } from "./cluster-args";

/** Per node: its private address, what the host is, the kernel values in force, what runs. */
export interface NodeOutputs {
    privateIp: string;
    facts: pulumi.Output<HostFacts>;
    kernel: pulumi.Output<KernelReport>;
    /** Installed package versions, as they are after this run's rolling upgrade. */
    packages: pulumi.Output<Record<string, string>>;
    /** The version the running server answers with (INFO server); undefined while the node is down. */
    serverVersion: pulumi.Output<string | undefined>;
}

/**
 * The ioredis options that make a client leave a dead server within about a second: a
 * connection attempt gives up after 0.2 s (the default, 10 s, is what each try of a powered-off
 * host or sentinel costs; a failover meets both, a dead master that the sentinels still name and
 * the dead host's sentinel, as ioredis asks the sentinels in turn), and a connection on which a command has waited 1 s for any reply is
 * dropped and made again (a powered-off host sends no reset, so nothing else notices). No
 * `failoverDetector`: with it, ioredis 5.11 ended its connection (no more reconnects) in 2 of 4
 * power-offs in the lab. An application whose commands may take longer (blocking commands, long
 * scripts) raises `socketTimeout` after spreading these (README "Speed").
 */
export const CLIENT_TIMEOUTS = { connectTimeout: 200, socketTimeout: 1000 } as const;

/** ioredis's options in sentinel mode: Sentinel's discovery user, Redis's `app` user. */
export interface SentinelClientOptions {
    sentinels: Endpoint[];
    name: string;
    sentinelUsername: string;
    sentinelPassword: string;
    username: string;
    password: string;
    connectTimeout: number;
    socketTimeout: number;
    /** A sentinel that accepts connections but does not answer is given up on after 0.2 s. */
    sentinelCommandTimeout: number;
    /** With tls.enabled: the cluster's CA (and with tls.authClients the `app` client certificate), for Redis and for the sentinels. */
    tls?: TlsClientOptions;
    sentinelTLS?: TlsClientOptions;
    enableTLSForSentinelMode?: boolean;
}

/** ioredis's options for the write VIP, as the `app` user. */
export interface VipClientOptions extends Endpoint {
    username: string;
    password: string;
    connectTimeout: number;
    socketTimeout: number;
    /** With tls.enabled: as in the ioredis output (TLS passes through the proxy to the node). */
    tls?: TlsClientOptions;
}

export class RedisHaCluster extends pulumi.ComponentResource {
    /** The Sentinel group's name. */
    readonly masterName: string;
    /** Every sentinel, as clients list them. */
    readonly sentinels: Endpoint[];
    /** The master, as the sentinels name it at every run (it follows failovers). */
    readonly currentMaster: pulumi.Output<NodeEndpoint>;
    readonly replicas: pulumi.Output<NodeEndpoint[]>;
    /** Per node: private IP, host facts, kernel values in force, package versions. */
    readonly nodes: Record<string, NodeOutputs>;
    /** Secret: spreads into `new Redis({...})` of ioredis, in sentinel mode (see README). */
    readonly ioredis: pulumi.Output<SentinelClientOptions>;
    /** With a proxy: the VIP that reaches the master, the one for reads, and the stats pages. */
    readonly write?: Endpoint;
    readonly read?: Endpoint;
    readonly proxyStats?: string[];
    /** With a proxy, secret: spreads into `new Redis({...})` to reach the master through the write VIP. */
    readonly vipClient?: pulumi.Output<VipClientOptions>;
    /** With metrics.enabled: per node, the exporter's URLs for its Redis and its Sentinel. */
    readonly metricsTargets?: MetricsTargets[];
    /** With tls.enabled: the CA certificate (PEM) that clients trust; not secret. */
    readonly tlsCaCertificate?: pulumi.Output<string>;

    constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("redis-ha:index:Cluster", name, {}, opts);
        const out = deployCluster(name, args, this);
        this.masterName = out.masterName;
        this.sentinels = out.sentinels;
        this.currentMaster = out.currentMaster;
        this.replicas = out.replicas;
        this.nodes = out.nodes;
        this.ioredis = out.ioredis;
        this.write = out.write;
        this.read = out.read;
        this.proxyStats = out.proxyStats;
        this.vipClient = out.vipClient;
        this.metricsTargets = out.metricsTargets;
        this.tlsCaCertificate = out.tlsCaCertificate;
        this.registerOutputs({ ...out });
    }
}

/**
 * The resources, children of `parent`. Stacks made before the component had them at the top
 * level, named without the cluster's name: the aliases move them in place (nothing replaced).
 */
function deployCluster(name: string, args: ClusterArgs, parent: pulumi.Resource) {
    const { cfg, sshPrivateKey, previousSshPrivateKey, secrets, tlsCertificates } = resolveClusterArgs(args);
    const child = (old?: string): pulumi.CustomResourceOptions => ({ parent, aliases: [{ ...(old ? { name: old } : {}), parent: pulumi.rootStackResource }] });
    // Per node: its child options, frozen when it is marked down (see frozen.ts).
    const nodeChild = (node: NodeConfig, more: pulumi.CustomResourceOptions) => ({ ...child(), ...more, ...frozenIf(node.down) });
    const runtime: Runtime = cfg.runtime === "docker" ? new DockerRuntime(cfg) : packagesRuntime(cfg.redis.server);
    const live = cfg.nodes.filter((n) => !n.down);

    // A node that does not answer fails the run here, named, before any server is touched.
    const probeSeconds = Math.min(cfg.sshTimeoutSeconds, 10);
    const reachable = pulumi.output(
        unreachableNodes(live, probeSeconds).then((dead) => {
            if (dead.length > 0) throw new pulumi.RunError(unreachableMessage(dead, (n) => cfg.nodes.findIndex((x) => x.name === n), probeSeconds));
        }),
    );
    // Refuses at preview what cannot change in place; everything on the servers waits for it.
    const guard = new SettingsGuard(`${name}-runtime`, guardedSettings(cfg, runtime.name), reachable, child("runtime"));
    const preps = new Map<string, ServerPrep>();
    // Each node's SSH host key is pinned first; every command then refuses another key.
    const ssh = new Map(cfg.nodes.map((n) => [n.name, nodeSsh(n, sshPrivateKey, cfg.sshTimeoutSeconds, nodeChild(n, { dependsOn: [guard] }))]));
    const connections = new Map([...ssh].map(([name, s]) => [name, s.connection]));
    // With TLS: the certificates, and what the deployer's own connections present (cluster-tls.ts).
    const tls = clusterTls(name, cfg, tlsCertificates, child());
    const deployerTls = tls?.client("deployer");
    const redisEndpoints: NodeEndpoint[] = cfg.nodes.map((n) => ({ name: n.name, host: n.privateIp, port: cfg.redis.port }));
    const sentinelEndpoints: NodeEndpoint[] = cfg.nodes.map((n) => ({ name: n.name, host: n.privateIp, port: cfg.sentinel.port }));
    const isLive = (e: NodeEndpoint) => live.some((n) => n.name === e.name);
    // The master right now, as the sentinels say (after a failover it differs from the config).
    const discovered = pulumi
        .all([secrets.sentinel, deployerTls])
        .apply(([password, tls]) => discoverMaster(sentinelEndpoints, cfg.sentinel.masterName, password, { tls }));

    // Docker: a new image replaces the containers one node at a time, replicas first, the master
    // last after a handover: each Redis container waits for its gate, each gate for the Redis
    // container before it (container-gate.ts); the Sentinel containers follow the same order.
    const containers = { redis: new Map<string, pulumi.Resource>(), sentinel: new Map<string, pulumi.Resource>() };
    const order = discovered.apply((d) => rollingOrder(live.map((n) => n.name), redisEndpoints.find((r) => r.host === d?.host && r.port === d?.port)?.name ?? cfg.initialMaster));
    const previous = (node: string, of: Map<string, pulumi.Resource>) =>
        order.apply((o) => (o.indexOf(node) > 0 ? [of.get(o[o.indexOf(node) - 1])!] : []));
    const docker = runtime instanceof DockerRuntime ? runtime : undefined;
    const gateOf = (node: NodeConfig) =>
        new ContainerGate(
            `${node.name}-container-gate`,
            {
                masterName: cfg.sentinel.masterName,
                node: node.name,
                redis: redisEndpoints.filter(isLive),
                sentinels: sentinelEndpoints.filter(isLive),
                image: docker!.imageOf(node),
                adminPassword: secrets.admin,
                timeoutSeconds: cfg.sentinel.agreementTimeoutSeconds,
            },
            { ...child(), dependsOn: previous(node.name, containers.redis) },
        );

    const redis = cfg.nodes.map((node) => {
        const connection = connections.get(node.name)!;
        // While the SSH key rotates, the new one is authorised (logged in with the old one) before
        // anything else runs with it. Otherwise the key step logs in with the key every step uses,
        // so the others need not wait for it (0.5 s of a fresh deploy).
        const hostKey = ssh.get(node.name)!.hostKey;
        const sshKey = sshKeyRotation(node.name, node.sshUser, connection, sshPrivateKey, previousSshPrivateKey, nodeChild(node, { dependsOn: [hostKey] }));
        const prep = new ServerPrep(
            node.name,
            {
                node,
                connection,
                kernel: cfg.kernel,
                runtime,
                packageVersion: cfg.redis.packageVersion,
                packageSource: cfg.redis.packageSource,
                alsoInstall: [...(cfg.proxy.nodes.includes(node.name) ? [PROXY_PACKAGE_SET] : []), ...(cfg.metrics.enabled ? [METRICS_PACKAGE_SET] : [])],
            },
            nodeChild(node, { dependsOn: [previousSshPrivateKey ? sshKey : hostKey] }),
        );
        preps.set(node.name, prep);
        const gated = docker && !node.down ? [gateOf(node)] : undefined;
        const redisNode = new RedisNode(node.name, { cfg, node, connection, secrets, runtime, after: gated, tls: tls?.node(node) }, nodeChild(node, { dependsOn: prep.done }));
        containers.redis.set(node.name, redisNode.ready);
        return redisNode;
    });

    // With no sentinel majority (a new or re-created cluster), the master is the node with the
    // newest data; the others become its replicas before any sentinel starts.
    const election = new MasterElection(
        `${name}-master-election`,
        {
            masterName: cfg.sentinel.masterName,
            sentinels: sentinelEndpoints.map(({ host, port }) => ({ host, port })),
            nodes: cfg.nodes.flatMap((n, i) =>
                n.down ? [] : [pulumi.all([redis[i].command.runId, redis[i].command.stdout]).apply(([runId, stdout]) => ({ ...redisEndpoints[i], runId, stdout }))],
            ),
            initialMaster: cfg.initialMaster,
            recoverFrom: cfg.recoverFrom,
            adminPassword: secrets.admin,
            tls: deployerTls,
        },
        { ...child(), dependsOn: redis.map((r) => r.ready) },
    );
    // Sentinels start once the Redis nodes form one group, so they find it as it should be.
    const sentinels = cfg.nodes.map((node) => {
        const sentinel = new SentinelNode(
            node.name,
            {
                cfg,
                node,
                connection: connections.get(node.name)!,
                secrets,
                runtime,
                after: docker && !node.down ? previous(node.name, containers.sentinel) : undefined,
                ...(tls ? { certUntil: tls.until(node.name) } : {}),
            },
            nodeChild(node, { dependsOn: [election] }),
        );
        containers.sentinel.set(node.name, sentinel.ready);
        return sentinel;
    });
    // With metrics: an exporter per node, once its Redis and Sentinel hold the `metrics` user.
    const exporters = cfg.metrics.enabled
        ? cfg.nodes.map(
              (node, i) =>
                  new MetricsExporter(
                      node.name,
                      { cfg, node, connection: connections.get(node.name)!, metricsPassword: secrets.metrics! },
                      nodeChild(node, { dependsOn: [redis[i].ready, sentinels[i].ready, ...preps.get(node.name)!.done] }),
                  ),
          )
        : [];

    // Nodes that left are stopped and forgotten before the group is checked.
    const members = cfg.nodes.map((n) =>
        pulumi.output(ssh.get(n.name)!.hostKey.fingerprint).apply((hostKey) => ({
            name: n.name,
            ip: n.privateIp,
            redisPort: cfg.redis.port,
            sentinelPort: cfg.sentinel.port,
            down: n.down,
            ssh: { host: n.host, port: n.sshPort, user: n.sshUser, hostKey },
        })),
    );
    const membership = new Membership(
        `${name}-membership`,
        {
            masterName: cfg.sentinel.masterName,
            members,
            adminPassword: secrets.admin,
            sshPrivateKey,
            retireScript: script("node-retire.sh"),
            runtime: runtime.name,
            ...recordedServer(cfg.redis.server),
            timeoutSeconds: cfg.sentinel.agreementTimeoutSeconds,
            tls: deployerTls,
        },
        { ...child(), dependsOn: sentinels.map((s) => s.ready) },
    );

    // What needs a restart is restarted node by node: replicas, then the master after a handover.
    const rolling = new RollingRestart(
        `${name}-rolling-restart`,
        {
            masterName: cfg.sentinel.masterName,
            members,
            wanted: rollingEnv(cfg, runtime),
            script: script("rolling-restart.sh"),
            adminPassword: secrets.admin,
            previousAdminPassword: pulumi.output(secrets.previous).apply((p) => p.adminPassword ?? ""),
            sshPrivateKey,
            timeoutSeconds: cfg.sentinel.agreementTimeoutSeconds,
            sshTimeoutSeconds: cfg.sshTimeoutSeconds,
            tls: deployerTls,
        },
        { ...child(), dependsOn: [membership] },
    );

    const down = cfg.nodes.filter((n) => n.down).map((n) => n.name);
    const agreement = new SentinelAgreement(
        `${name}-sentinel-agreement`,
        {
            masterName: cfg.sentinel.masterName,
            sentinels: sentinelEndpoints.filter(isLive),
            redis: redisEndpoints.filter(isLive),
            ...(down.length > 0
                ? { down: { sentinels: sentinelEndpoints.filter((e) => !isLive(e)), redis: redisEndpoints.filter((e) => !isLive(e)) } }
                : {}),
            adminPassword: secrets.admin,
            timeoutSeconds: cfg.sentinel.agreementTimeoutSeconds,
            // Checked again when a command ran, or a container was replaced.
            revisions: [...redis, ...sentinels].map((n) => (n.ready === n.command ? n.command.runId : (n.ready as pulumi.CustomResource).id)),
            tls: deployerTls,
        },
        { ...child("sentinel-agreement"), dependsOn: [rolling] },
    );

    // The proxy starts once every Redis and Sentinel has its users and passwords (a rotated
    // password must be known there before HAProxy logs in with it), alongside the agreement;
    // its check that the VIPs are served waits for the agreement.
    const proxy =
        cfg.proxy.nodes.length === 0
            ? undefined
            : new VipProxy(
                  `${name}-vip-proxy`,
                  {
                      cfg,
                      connections,
                      after: new Map([...preps].map(([name, prep]) => [name, prep.done])),
                      configAfter: [...redis.map((r) => r.ready), ...sentinels.map((s) => s.ready)],
                      healthCheckPassword: secrets.healthCheck!,
                      appPassword: secrets.app,
                      sentinelPassword: secrets.sentinel,
                      statsPassword: secrets.stats!,
                      down,
                      checkAfter: [agreement],
                      tls: deployerTls,
                      ...(tls ? { certUntil: tls.until } : {}),
                  },
                  child("vip-proxy"),
              );

    // The master as the sentinels name it; before any sentinel runs, the one the agreement found
    // at the last change. Where the master is is no secret, even though finding out took a password.
    const currentMaster = pulumi.unsecret(
        pulumi.all([discovered, agreement.master]).apply(([d, agreed]) => {
            const found = d && redisEndpoints.find((r) => r.host === d.host && r.port === d.port);
            return found ?? agreed;
        }),
    );

    const appTls = tls?.client("app");
    return {
        masterName: cfg.sentinel.masterName,
        sentinels: sentinelEndpoints.map(({ host, port }) => ({ host, port })),
        currentMaster,
        replicas: currentMaster.apply((m) => redisEndpoints.filter((r) => r.name !== m.name)),
        nodes: Object.fromEntries(
            cfg.nodes.map((n) => {
                const prep = preps.get(n.name)!;
                // The packages step runs before the rolling upgrade; the rollout reads what runs after it.
                const runs = rolling.runs.apply((r) => r?.[n.name]);
                const packages = pulumi.all([prep.packageVersions, runs]).apply(([installed, now]) => ({ ...installed, ...now?.packages }));
                return [n.name, { privateIp: n.privateIp, facts: prep.facts, kernel: prep.kernel, packages, serverVersion: runs.apply((r) => r?.version) }];
            }),
        ),
        /** With a proxy: the VIP that reaches the master, the one for reads, and the stats pages. */
        write: proxy?.write,
        read: proxy?.read,
        proxyStats: proxy?.statsUrls,
        /** With a proxy: spreads into `new Redis({...})` of ioredis to reach the master through the write VIP. */
        vipClient: proxy && pulumi.secret({ ...proxy.write, username: "app", password: secrets.app, ...CLIENT_TIMEOUTS, ...(appTls ? { tls: appTls } : {}) }),
        tlsCaCertificate: tls?.caCert,
        /** With metrics.enabled: what Prometheus scrapes, per node (README "Metrics"). */
        metricsTargets: cfg.metrics.enabled ? exporters.map((e) => e.targets) : undefined,
        /**
         * Spreads into `new Redis({...})` of ioredis: sentinel mode, Sentinel's discovery-only
         * user and the least-privileged `app` user of Redis.
         */
        ioredis: pulumi.secret({
            sentinels: sentinelEndpoints.map(({ host, port }) => ({ host, port })),
            name: cfg.sentinel.masterName,
            sentinelUsername: "discovery",
            sentinelPassword: secrets.sentinel,
            username: "app",
            password: secrets.app,
            ...CLIENT_TIMEOUTS,
            sentinelCommandTimeout: 200,
            ...(appTls ? { tls: appTls, sentinelTLS: appTls, enableTLSForSentinelMode: true } : {}),
        }),
    };
}

