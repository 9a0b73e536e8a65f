// Pure functions that turn the validated config into what the server scripts take: Redis
// settings, ACL rules and environment variables. No secrets here: those travel on stdin.
import { type NodeConfig, type ResolvedConfig, type Server, SENTINEL_CHANNEL_PREFIX } from "./config";

/**
 * Redis ACL channel rules matching every channel that does not start with `prefix`: the
 * proper prefixes of it as exact names, then, per position, the prefix so far followed by any
 * other character. (Redis's channel ACLs are allow-lists; this is how "all but" is spelled.)
 */
export function channelsExcept(prefix: string): string[] {
    const escape = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
    const rules: string[] = [];
    for (let i = 0; i < prefix.length; i++) {
        if (i > 0) rules.push(`&${escape(prefix.slice(0, i))}`);
        rules.push(`&${escape(prefix.slice(0, i))}[^${escape(prefix[i])}]*`);
    }
    return rules;
}

/** The channel rules of the `app` user: `*` stands for every channel but Sentinel's. */
export function appChannelRules(patterns: string[]): string {
    return ["resetchannels", ...patterns.flatMap((p) => (p === "*" ? channelsExcept(SENTINEL_CHANNEL_PREFIX) : [`&${p}`]))].join(" ");
}

/**
 * Redis ACL users and their rights (least privilege); the scripts add each user's password hash.
 * sentinel: the list Redis's Sentinel documentation gives; replication: what PSYNC needs;
 * app: every data command, none of the admin or dangerous ones except the read-only INFO and
 * ROLE that clients use to check where they are connected, and no Sentinel channel (a PUBLISH
 * on `__sentinel__:hello` would make the sentinels follow a fake master).
 */
export function aclRules(cfg: ResolvedConfig): Record<string, string> {
    return {
        admin: "~* &* +@all",
        replication: "+psync +replconf +ping",
        sentinel:
            "allchannels +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill",
        app: `~* ${appChannelRules(cfg.redis.appChannels)} +@all -@admin -@dangerous +info +role`,
        ...(cfg.proxy.nodes.length > 0 ? { healthcheck: HEALTHCHECK_RULES } : {}),
        ...(cfg.metrics.enabled ? { metrics: METRICS_RULES } : {}),
    };
}

/**
 * The exporter's user on Redis (metrics.enabled): what prometheus-redis-exporter reads, no key
 * and no channel. Not CONFIG GET: it would show masterauth, the replication password (the
 * exporter runs with --config-command=-, so it does not ask).
 */
export const METRICS_RULES = "resetchannels -@all +ping +info +role +client|setname +slowlog|get +slowlog|len +latency|latest +latency|histogram";

/** The user HAProxy's health checks log in as, with a proxy: PING and ROLE, nothing else. */
export const HEALTHCHECK_RULES = "+ping +role";

/**
 * Sentinel's own ACL users (its `default` user is off):
 * admin: the deployer, everything;
 * sentinel: the sentinels among themselves (sentinel-user): pings, votes and hello messages;
 * discovery: what clients in sentinel mode ask (ioredis, redis-py), and Sentinel's events.
 * No user but admin can change Sentinel's configuration or start a failover.
 */
export function sentinelAclRules(cfg: ResolvedConfig): Record<string, string> {
    return { ...SENTINEL_ACL_RULES, ...(cfg.metrics.enabled ? { metrics: SENTINEL_METRICS_RULES } : {}) };
}

/** With metrics.enabled, the exporter's user on Sentinel: what it reads of the groups, nothing it could change. */
export const SENTINEL_METRICS_RULES = "resetchannels -@all +ping +info +role +client|setname +sentinel|masters +sentinel|master +sentinel|replicas +sentinel|slaves +sentinel|sentinels";

const SENTINEL_ACL_RULES: Record<string, string> = {
    admin: "allchannels +@all",
    sentinel: `resetchannels &${SENTINEL_CHANNEL_PREFIX}hello +ping +publish +client|setname +sentinel|is-master-down-by-addr`,
    discovery:
        "allchannels +ping +hello +client|setname +client|getname +role +info +subscribe +psubscribe +unsubscribe +punsubscribe " +
        "+sentinel|get-master-addr-by-name +sentinel|master +sentinel|masters +sentinel|replicas +sentinel|slaves +sentinel|sentinels +sentinel|myid",
};

/** Sentinel's `default` user: "off", or "discovery" (legacy client auth: its rights and password). */
export function sentinelDefaultUser(cfg: ResolvedConfig): string {
    return cfg.sentinel.legacyClientAuth ? "discovery" : "off";
}

/** "user rules" lines, as the scripts take them. */
export const userLines = (rules: Record<string, string>) =>
    Object.entries(rules)
        .map(([user, r]) => `${user} ${r}`)
        .join("\n");

/** Where a node keeps its TLS files (with tls.enabled): ca.crt, node.crt, node.key, node.pem (both, for HAProxy). */
export const TLS_DIR = "/etc/ssl/redis-ha";

/**
 * How Redis or Sentinel listens on `port`, as "key value" lines: in clear, or with tls.enabled,
 * TLS only (the plaintext port closed), with the node's certificate, which it also presents as a
 * client (replication, Sentinel to Redis and to the other sentinels), trusting the cluster's CA
 * only. Each can be changed with CONFIG SET; setting tls-cert-file again reloads the files.
 */
export function listenSettings(cfg: ResolvedConfig, port: number): string[] {
    if (!cfg.tls.enabled) return [`port ${port}`];
    return [
        "port 0",
        `tls-port ${port}`,
        `tls-cert-file ${TLS_DIR}/node.crt`,
        `tls-key-file ${TLS_DIR}/node.key`,
        `tls-ca-cert-file ${TLS_DIR}/ca.crt`,
        `tls-auth-clients ${cfg.tls.authClients ? "yes" : "no"}`,
        "tls-replication yes",
    ];
}

/** With tls.enabled, the scripts' TLS_DIR: they then speak TLS (server_cli in assets/lib/common.sh). */
export const tlsEnv = (cfg: ResolvedConfig): Record<string, string> => (cfg.tls.enabled ? { TLS_DIR } : {});

/**
 * The settings redis-ha manages on a node, as "key value" lines in redis.conf syntax. Each can
 * be changed with CONFIG SET, so changing one never needs a restart. Never includes
 * `replicaof`: after creation, which node is master is Sentinel's business.
 */
export function redisSettings(cfg: ResolvedConfig, node: NodeConfig): string[] {
    const r = cfg.redis;
    return [
        `bind ${node.privateIp} 127.0.0.1 -::1`,
        ...listenSettings(cfg, r.port),
        "protected-mode yes",
        `maxmemory ${r.maxmemory.toLowerCase()}`,
        `maxmemory-policy ${r.maxmemoryPolicy}`,
        `appendonly ${r.appendonly ? "yes" : "no"}`,
        `save ${r.save === "" ? '""' : r.save}`,
        `min-replicas-to-write ${cfg.nodes.length > 1 ? r.minReplicasToWrite : 0}`,
        `min-replicas-max-lag ${r.minReplicasMaxLag}`,
        // A full resync starts at once and streams from memory (no disk step); the backlog keeps
        // replicas able to resync partially after longer absences (README "Speed").
        "repl-diskless-sync yes",
        `repl-diskless-sync-delay ${r.replDisklessSyncDelay}`,
        `repl-backlog-size ${r.replBacklogSize.toLowerCase()}`,
        `replica-announce-ip ${node.privateIp}`,
        `replica-priority ${node.replicaPriority}`,
    ];
}

/**
 * The settings Redis reads only at start, as "key value" lines: written into redis.conf at
 * creation, and on a change by the rolling restart (assets/rolling-restart.sh), node by node.
 */
export function restartSettings(cfg: ResolvedConfig): string[] {
    return [`databases ${cfg.redis.databases}`];
}

/**
 * The settings redis-ha manages for the monitored group, as "key value" lines, each as
 * `SENTINEL SET <name> <key> <value>` takes it: sentinel-node.sh writes them into sentinel.conf
 * at creation (`sentinel <key> <name> <value>`; the quorum in the `sentinel monitor` line) and
 * applies them all with one SENTINEL SET on later runs, so changing one never needs a restart.
 */
export function sentinelSettings(cfg: ResolvedConfig): string[] {
    const s = cfg.sentinel;
    return [
        `quorum ${s.quorum}`,
        `down-after-milliseconds ${s.downAfterMilliseconds}`,
        `failover-timeout ${s.failoverTimeout}`,
        `parallel-syncs ${s.parallelSyncs}`,
    ];
}

/**
 * How often each sentinel pings (assets/hooks/sentinel-start.sh): a tenth of the down-after
 * period, kept between 300 ms and 1 s (Redis's own pace). The 300 ms floor is not about
 * load: while the master is down, Sentinel promotes only a replica whose INFO it read within the
 * last 5 ping periods, and it reads the replicas' INFO once a second then (fixed in Sentinel), so
 * 5 periods must outlast that second and the timer's tick: with 100 ms, a failover found "no good
 * replica" about every other time and tried again 2 × failoverTimeout later.
 */
export function sentinelPingPeriodMs(cfg: ResolvedConfig): number {
    return Math.min(1000, Math.max(300, Math.floor(cfg.sentinel.downAfterMilliseconds / 10)));
}

/** Where the sentinels are, as the scripts take it: "ip:port ip:port …". */
export function sentinelPeers(cfg: ResolvedConfig): string {
    return cfg.nodes.map((n) => `${n.privateIp}:${cfg.sentinel.port}`).join(" ");
}

/** Environment shared by redis-node.sh and sentinel-node.sh for one node. */
export function clusterEnv(cfg: ResolvedConfig, node: NodeConfig): Record<string, string> {
    return {
        REDIS_PORT: String(cfg.redis.port),
        SELF_IP: node.privateIp,
        NODE_IPS: cfg.nodes.map((n) => n.privateIp).join(" "),
        SENTINEL_PEERS: sentinelPeers(cfg),
        MASTER_NAME: cfg.sentinel.masterName,
        ...tlsEnv(cfg),
    };
}

/** Environment of redis-node.sh for one node (the runtime adds RUNTIME). */
export function redisNodeEnv(cfg: ResolvedConfig, node: NodeConfig): Record<string, string> {
    return {
        ...clusterEnv(cfg, node),
        REDIS_SETTINGS: redisSettings(cfg, node).join("\n"),
        RESTART_SETTINGS: restartSettings(cfg).join("\n"),
        ACL_RULES: userLines(aclRules(cfg)),
        PURGE_DATA: cfg.redis.purgeDataOnDestroy ? "yes" : "no",
    };
}

/** What the nodes should run, as assets/rolling-restart.sh takes it (its environment). */
export function rollingEnv(cfg: ResolvedConfig, runtime: { name: string; scriptEnv: Record<string, string> }): Record<string, string> {
    return {
        REDIS_PORT: String(cfg.redis.port),
        SENTINEL_PORT: String(cfg.sentinel.port),
        RESTART_SETTINGS: restartSettings(cfg).join("\n"),
        PACKAGE_VERSION: cfg.redis.packageVersion ?? "",
        PACKAGES: serverPackages(cfg.redis.server).join(" "),
        GENERATION: String(cfg.rollingRestart),
        ...tlsEnv(cfg),
        ...runtime.scriptEnv,
    };
}

/** The Debian packages of the server (redis-server, … or valkey-server, …) that move together to redis.packageVersion. */
export const serverPackages = (server: Server) => [`${server}-server`, `${server}-sentinel`, `${server}-tools`];

/** Environment of sentinel-node.sh for one node (the runtime adds RUNTIME). */
export function sentinelNodeEnv(cfg: ResolvedConfig, node: NodeConfig): Record<string, string> {
    return {
        ...clusterEnv(cfg, node),
        SENTINEL_PORT: String(cfg.sentinel.port),
        SENTINEL_LISTEN: listenSettings(cfg, cfg.sentinel.port).join("\n"),
        SENTINEL_SETTINGS: sentinelSettings(cfg).join("\n"),
        PING_PERIOD_MS: String(sentinelPingPeriodMs(cfg)),
        SENTINEL_ACL_RULES: userLines(sentinelAclRules(cfg)),
        SENTINEL_DEFAULT_USER: sentinelDefaultUser(cfg),
    };
}
