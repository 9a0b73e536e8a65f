// The stack configuration: one zod schema, parsed once in index.ts, before any resource exists.
// Every error names the config key (as `pulumi config set` spells it) and what to do about it.
// Defaults follow Redis's own recommendations (see README, "Config keys").
import { z } from "zod";
import { globCanMatchPrefix } from "./glob";
import { ipv4Number, networkText, inNetwork, parseNetwork, coveringNetwork, unusableAddress } from "./ipv4";
import { hostKeyFingerprint } from "./ssh";
import { certProblems, userCertsText } from "./tls-user-certs";
import { X509Certificate } from "crypto";

export const CONFIG_NAMESPACE = "redis-ha";

/** The VIPs, with a proxy (the addresses clients dial besides the nodes'), else none. */
export const proxyVips = (proxy: { nodes: string[]; writeVip?: string; readVip?: string }): string[] =>
    proxy.nodes.length > 0 ? [proxy.writeVip, proxy.readVip].filter((v): v is string => v !== undefined) : [];

/** A majority of n (sentinels): more than half of them. */
export const majority = (n: number) => Math.floor(n / 2) + 1;

const isIpv4 = (s: string) => z.ipv4().safeParse(s).success;
const ipv4 = z.ipv4({ error: "must be an IPv4 address such as 10.211.11.7" });
const port = z
    .number({ error: "must be a port number" })
    .int({ error: "must be a whole number" })
    .min(1, { error: "must be between 1 and 65535" })
    .max(65535, { error: "must be between 1 and 65535" });
const count = (min: number, max: number) =>
    z
        .number({ error: `must be a whole number from ${min} to ${max}` })
        .int({ error: `must be a whole number from ${min} to ${max}` })
        .min(min, { error: `must be at least ${min}` })
        .max(max, { error: `must be at most ${max}` });

/** Why a Docker image reference would not pin what runs, or undefined. */
function imageProblem(image: string): string | undefined {
    const m = /^(?<name>[^@]+?)(?::(?<tag>[^:/@]+))?(?<digest>@sha256:[a-f0-9]{64})?$/.exec(image);
    const component = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    const name = new RegExp(`^(?:[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*(?::\\d+)?/)?${component}(?:/${component})*$`);
    if (!m?.groups || !name.test(m.groups.name) || (m.groups.tag !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(m.groups.tag))) {
        return "must be an image such as redis:7.4.2 or redis@sha256:<64 hex digits>";
    }
    const { tag, digest } = m.groups;
    const pin = "pin a full version such as redis:7.4.2 or redis:7.4.2-bookworm, or a digest such as redis@sha256:<64 hex digits>";
    if (digest) return undefined;
    if (tag === undefined) return `must name a tag or digest: ${image} alone means the tag latest, which floats (it moves to every new release); ${pin}`;
    if (/^latest$/i.test(tag) || !/^\d+\.\d+\.\d+(-[A-Za-z0-9][A-Za-z0-9._-]*)?$/.test(tag)) {
        return `must pin a version: the tag ${tag} floats (it moves to newer releases under you); ${pin}`;
    }
    return undefined;
}

const nodeName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/, {
    error: "must be 1-32 lower-case letters, digits or '-', e.g. redis-1 (it names resources and hosts)",
});

export const nodeSchema = z.strictObject({
    /** Resource-friendly name of the server, unique in the stack. */
    name: nodeName,
    /** Address Pulumi reaches the server's sshd on. */
    host: z.string({ error: "is required: the server's SSH address" }).superRefine((h, ctx) => {
        if (/^[\d.]+$/.test(h) ? !isIpv4(h) : !z.hostname().safeParse(h).success) {
            ctx.addIssue({ code: "custom", message: "must be an IPv4 address such as 10.211.11.7, or a DNS name" });
        }
    }),
    /** SSH user; root, or a user with password-less sudo. Default: root. */
    sshUser: z
        .string()
        .regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: "must be a plain user name such as deploy (lower-case letters, digits, '_' or '-'; at most 32)" })
        .default("root"),
    /** SSH port. Default: 22. */
    sshPort: port.default(22),
    /** Private address Redis and Sentinel bind and announce. Default: `host` when it is an IPv4 address. */
    privateIp: ipv4.optional(),
    /** Sentinel promotes the replica with the lowest priority; 0 = never promote. Default: 100. */
    replicaPriority: count(0, 1000).default(100),
    /**
     * The server is down (for a while, or for good until it is replaced): every step skips it, its
     * resources keep their last state, and the agreement does not expect it. It stays a member (its
     * sentinel counts for the quorum). Default: false. See README "Day 2".
     */
    down: z.boolean({ error: "must be true or false" }).default(false),
    /**
     * The server's SSH host key, to pin: its fingerprint (`SHA256:…`, from `ssh-keygen -lf`) or its
     * public key / known_hosts line (`ssh-ed25519 AAAA…`). Resolved to the fingerprint.
     */
    hostKey: z
        .string()
        .transform((line, ctx) => {
            const fingerprint = hostKeyFingerprint(line);
            if (fingerprint === undefined) {
                ctx.addIssue({
                    code: "custom",
                    message:
                        "is not an SSH host key: give its fingerprint (SHA256:…, from ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server) or its public key line (ssh-ed25519 AAAA…, e.g. from ssh-keyscan -t ed25519 <host>)",
                });
            }
            return fingerprint ?? z.NEVER;
        })
        .optional(),
});

/** The servers a cluster can run: Redis, or Valkey, its fork (same protocol, commands and configuration). */
export const SERVERS = ["redis", "valkey"] as const;
export type Server = (typeof SERVERS)[number];
/** The server as a resource records it: nothing for redis, so stacks from before the choice see no change. */
export const recordedServer = (server: Server): { server?: Server } => (server === "redis" ? {} : { server });

/**
 * Where the server's packages come from: Debian's own archive (the host's apt sources), or an
 * apt repository of your own or the vendor's (e.g. redis.io's, see README "Package source").
 */
export const packageSourceSchema = z
    .strictObject({
        /** debian: the host's apt sources as they are; apt: the repository below, added on every node. */
        type: z.enum(["debian", "apt"], { error: 'must be "debian" or "apt"' }).default("debian"),
        /** The repository's base URL, e.g. https://packages.redis.io/deb. */
        url: z
            .string()
            .regex(/^https?:\/\/[^\s/$.?#][^\s]*$/, { error: "must be an http:// or https:// URL, e.g. https://packages.redis.io/deb" })
            .optional(),
        /** The suite (distribution), e.g. bookworm. */
        suite: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._\/-]*$/, { error: "must be a suite name such as bookworm" }).optional(),
        /** The component. Default: main. */
        component: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: "must be a component name such as main" }).default("main"),
        /** The repository's signing key: the ASCII-armored public key (-----BEGIN PGP PUBLIC KEY BLOCK-----). */
        signingKey: z
            .string()
            .refine((k) => /^-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]+-----END PGP PUBLIC KEY BLOCK-----\s*$/.test(k.trim()), {
                error: "must be an ASCII-armored public key (-----BEGIN PGP PUBLIC KEY BLOCK----- …), e.g. pulumi config set --path redis-ha:redis.packageSource.signingKey -- \"$(curl -fsSL https://packages.redis.io/gpg)\"",
            })
            .optional(),
    })
    .prefault({});

export const redisSchema = z
    .strictObject({
        /**
         * What runs on every node: redis (Debian's redis-server and redis-sentinel) or valkey
         * (valkey-server and valkey-sentinel, with their own units, paths and user). One for the
         * whole cluster, fixed on a live stack (README "Choosing the server"). Packages runtime
         * only. Default: redis.
         */
        server: z.enum(SERVERS, { error: 'must be "redis" or "valkey"' }).default("redis"),
        /** Port Redis listens on. Default: 6379. */
        port: port.default(6379),
        /** Memory limit, e.g. 2gb or 512mb. Required: Redis recommends an explicit limit. */
        maxmemory: z
            .string({ error: "is required: set it below the server's RAM, e.g. pulumi config set --path redis-ha:redis.maxmemory 2gb" })
            .regex(/^[1-9]\d*(b|kb|mb|gb)?$/i, { error: "must be a size such as 512mb or 2gb" }),
        /** Eviction policy when maxmemory is reached. Default: noeviction (writes fail, nothing is dropped). */
        maxmemoryPolicy: z
            .enum(["noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"])
            .default("noeviction"),
        /** Append-only file persistence. Default: true (fsync every second). */
        appendonly: z.boolean({ error: "must be true or false" }).default(true),
        /** RDB snapshot rules ("" disables them). Default: Redis's own, "3600 1 300 100 60 10000". */
        save: z
            .string()
            .regex(/^(\d+ \d+( \d+ \d+)*)?$/, { error: 'must be pairs of "seconds changes", e.g. "3600 1 300 100", or "" to disable' })
            .default("3600 1 300 100 60 10000"),
        /** The master refuses writes unless this many replicas are connected. Default: 1. */
        minReplicasToWrite: count(0, 100).default(1),
        /** …and lag at most this many seconds. Default: 10. */
        minReplicasMaxLag: count(1, 3600).default(10),
        /**
         * Number of logical databases. Redis reads it only at start: a change restarts the nodes one
         * by one (README "Rolling operations"). Default: 16.
         */
        databases: count(1, 10000).default(16),
        /**
         * Seconds a master waits before it streams a full resync (repl-diskless-sync-delay), for
         * more replicas to join the same transfer. Writes stop meanwhile when min-replicas-to-write
         * counts on that replica. Default: 0 (Redis's own: 5): each replica that needs a full
         * resync gets its own transfer (a fork of the master each), at once.
         */
        replDisklessSyncDelay: count(0, 300).default(0),
        /**
         * The replication backlog (repl-backlog-size): a replica away for less than this much of
         * writes resyncs partially, with no full transfer. Held on every node, outside maxmemory.
         * Default: 64mb (Redis's own: 1mb).
         */
        replBacklogSize: z
            .string()
            .regex(/^[1-9]\d*(b|kb|mb|gb)?$/i, { error: "must be a size such as 64mb" })
            .default("64mb"),
        /**
         * Debian package version of redis-server, redis-sentinel and redis-tools (with valkey:
         * valkey-server, …), e.g. 5:7.0.15-1~deb12u10 (apt-cache policy redis-server lists them).
         * New servers install it, running ones move to it one by one (README "Rolling
         * operations"); held with apt-mark. Default: whatever apt installs first, never upgraded
         * by redis-ha. Packages runtime only.
         */
        packageVersion: z
            .string()
            .regex(/^(\d+:)?[0-9][A-Za-z0-9.+~-]*$/, { error: "must be a Debian version such as 5:7.0.15-1~deb12u10 (apt-cache policy redis-server lists them)" })
            .optional(),
        packageSource: packageSourceSchema,
        /** Delete /var/lib/redis when the stack is destroyed (run `pulumi up` after setting it). Default: false. */
        purgeDataOnDestroy: z.boolean({ error: "must be true or false" }).default(false),
        /**
         * Pub/Sub channel patterns (Redis globs) the `app` user may use. Default: ["*"], every channel
         * but Sentinel's own `__sentinel__:*`. [] allows none.
         */
        appChannels: z
            .array(z.string().regex(/^\S+$/, { error: "must be a channel pattern without spaces, such as app:*" }))
            .default(["*"]),
    })
    .prefault({} as never);

export const sentinelSchema = z
    .strictObject({
        /** Port Sentinel listens on. Default: 26379. */
        port: port.default(26379),
        /** Name of the monitored group, as clients ask for it. Default: mymaster. Fixed after creation. */
        masterName: z
            .string()
            .regex(/^[A-Za-z0-9._-]{1,64}$/, { error: "must be 1-64 letters, digits, '.', '_' or '-'" })
            .default("mymaster"),
        /** Sentinels that must agree the master is down. Default: a majority of the nodes. */
        quorum: count(1, 100).optional(),
        /** Milliseconds without an answer before a node is considered down. Default: 30000. */
        downAfterMilliseconds: count(100, 3_600_000).default(30000),
        /** Default: 180000. */
        failoverTimeout: count(1000, 86_400_000).default(180000),
        /** Replicas resynchronised with a new master at the same time. Default: 1. */
        parallelSyncs: count(1, 100).default(1),
        /** How long `pulumi up` waits for the sentinels to agree. Default: 180 s. */
        agreementTimeoutSeconds: count(5, 3600).default(180),
        /**
         * Keep Sentinel's `default` user on, with discovery-only rights and the sentinelPassword, for
         * applications deployed with outputs that have no sentinelUsername. A transition aid. Default: false.
         */
        legacyClientAuth: z.boolean({ error: "must be true or false" }).default(false),
    })
    .prefault({});

export const kernelSchema = z
    .strictObject({
        /** Transparent huge pages: never (Redis's advice), madvise, or keep (leave as is). Default: never. */
        transparentHugePages: z.enum(["never", "madvise", "keep"]).default("never"),
        /** vm.overcommit_memory: 1 (Redis's advice, so BGSAVE can fork), or keep. Default: 1. */
        overcommitMemory: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal("keep")]).default(1),
        /** net.core.somaxconn, at least Redis's tcp-backlog (511). Default: 1024. */
        somaxconn: count(128, 1_048_576).default(1024),
        /** vm.swappiness; unset leaves it alone (Redis advises keeping swap). */
        swappiness: count(0, 200).optional(),
    })
    .prefault({});

export const proxySchema = z
    .strictObject({
        /** Nodes that run HAProxy (by name). None: no proxy. Two or more: the VIPs float between them (keepalived). */
        nodes: z.array(nodeName).default([]),
        /** The proxy nodes' network, e.g. 10.211.99.0/24; the VIPs lie in it. Default: the proxy nodes' /24. */
        network: z
            .string()
            .superRefine((cidr, ctx) => {
                const net = parseNetwork(cidr);
                if (typeof net === "string") ctx.addIssue({ code: "custom", message: net });
            })
            .optional(),
        /** Address that always reaches the master. */
        writeVip: ipv4.optional(),
        /** Address that reaches a healthy replica (or the master, see readFallbackToMaster). */
        readVip: ipv4.optional(),
        /** Port HAProxy listens on, on both VIPs. Default: the Redis port. */
        port: port.optional(),
        /** Reads go to the master when no replica is healthy. Default: true. */
        readFallbackToMaster: z.boolean({ error: "must be true or false" }).default(true),
        /** Port of the stats page, bound to each proxy node's private address. Default: 8404. */
        statsPort: port.default(8404),
        /** VRRP router id, unique on the network segment. Default: 51. */
        virtualRouterId: count(1, 255).default(51),
        /** Client connections HAProxy accepts at once; it needs about twice as many file descriptors. Default: 4000. */
        maxConnections: count(100, 1_000_000).default(4000),
        /** Milliseconds between health checks. Default: 1000. */
        checkIntervalMs: count(100, 60000).default(1000),
    })
    .prefault({});

export const dockerSchema = z
    .strictObject({
        /** Redis image, with a pinned tag or digest (not `latest`). Default: redis:7.4.2. */
        image: z
            .string()
            .superRefine((image, ctx) => {
                const problem = imageProblem(image);
                if (problem) ctx.addIssue({ code: "custom", message: problem });
            })
            .default("redis:7.4.2"),
        /** Install Docker Engine from Debian's packages (docker.io) when missing. Default: false. */
        installEngine: z.boolean({ error: "must be true or false" }).default(false),
        /** The image is already on the hosts (no registry): do not pull it. Default: false. */
        preloaded: z.boolean({ error: "must be true or false" }).default(false),
        /** Extra ssh options for the Docker provider's ssh://user@host connection, e.g. ["-i", "~/.ssh/key"]. */
        sshOpts: z.array(z.string()).default([]),
        /** Container memory limit above maxmemory, for fork copy-on-write and buffers. Default: 50 (%). */
        memoryHeadroomPercent: count(10, 400).default(50),
    })
    .prefault({});

export const metricsSchema = z
    .strictObject({
        /**
         * Install Debian's prometheus-redis-exporter on every node, scraping its Redis and its
         * Sentinel as the ACL user `metrics` (needs metricsPassword). Default: false.
         */
        enabled: z.boolean({ error: "must be true or false" }).default(false),
        /** Port the exporter listens on, on each node's private address only. Default: 9121. */
        port: port.default(9121),
    })
    .prefault({});

export const tlsSchema = z
    .strictObject({
        /**
         * Redis, replication, Sentinel and the proxy's checks speak TLS only: the plaintext ports
         * are closed, redis.port and sentinel.port take TLS. Fixed on a live stack (README "TLS").
         * Default: false.
         */
        enabled: z.boolean({ error: "must be true or false" }).default(false),
        /** Clients must also present a certificate from the cluster's CA (tls-auth-clients yes); the outputs carry one. Default: false. */
        authClients: z.boolean({ error: "must be true or false" }).default(false),
        /** Days the node and client certificates are valid. Default: 365. */
        validityDays: count(1, 3650).default(365),
        /** A certificate this many days or fewer from its end is issued anew at the next `pulumi up` and loaded live. Default: 30. */
        renewBeforeDays: count(0, 3649).default(30),
    })
    .prefault({});

const password = (key: string) =>
    z
        .string({ error: `is required: pulumi config set --secret redis-ha:${key} "$(openssl rand -base64 32)"` })
        .min(16, { error: "is too short: use at least 16 characters, e.g. openssl rand -base64 32" })
        .superRefine((value, ctx) => {
            const bad = [...new Set([...value].filter((c) => !/^[\x21-\x7e]$/.test(c)))];
            if (bad.length === 0) return;
            const shown = bad.map((c) => (/^[\x20-\x7e\xa1-\u{10ffff}]$/u.test(c) ? `'${c}'` : `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`));
            ctx.addIssue({
                code: "custom",
                message: `contains characters other than printable ASCII without spaces: ${shown.join(", ")}; use letters, digits and punctuation only, e.g. openssl rand -base64 32`,
            });
        });

/** An SSH private key (OpenSSH or PEM) as the file holds it; `fix` says how to set it right. */
const privateKey = (text: z.ZodString, fix: string) => text.refine((k) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(k), { error: `is not a private key: ${fix}` });

/** The secret keys, each a password of its own. */
export const PASSWORD_KEYS = ["adminPassword", "replicationPassword", "sentinelAuthPassword", "sentinelPassword", "appPassword"] as const;
export type PasswordKey = (typeof PASSWORD_KEYS)[number];
/** Secret keys needed only with a proxy. */
export const PROXY_PASSWORD_KEYS = ["healthCheckPassword", "statsPassword"] as const;
export type ProxyPasswordKey = (typeof PROXY_PASSWORD_KEYS)[number];
/** Secret keys that may be left out: the proxy's, the exporter's, and the SSH key being retired. */
export const OPTIONAL_SECRET_KEYS = [...PROXY_PASSWORD_KEYS, "metricsPassword", "previousSshPrivateKey", "tlsCertificates"] as const;
/** Every key that holds a secret string: the SSH keys and the passwords (previousPasswords holds more). */
export const SECRET_KEYS = ["sshPrivateKey", ...PASSWORD_KEYS, ...OPTIONAL_SECRET_KEYS] as const;
/** The passwords that can rotate with both accepted for a while (previousPasswords). */
export const ROTATING_KEYS = [...PASSWORD_KEYS, "healthCheckPassword"] as const;
export type RotatingKey = (typeof ROTATING_KEYS)[number];
export type SecretKey = (typeof SECRET_KEYS)[number];

/** Sentinel's own channels: the sentinels believe anything announced on `__sentinel__:hello`. */
export const SENTINEL_CHANNEL_PREFIX = "__sentinel__:";

export const stackConfigSchema = z
    .strictObject({
        /** The servers; names and addresses must be unique. Each runs Redis and Sentinel. */
        nodes: z.array(nodeSchema).min(1, { error: "must list at least one server" }),
        /** Node that is master when the cluster is first created. Default: the first node. Later, Sentinel decides. */
        initialMaster: nodeName.optional(),
        /**
         * When the cluster is (re)created and no sentinel answers, the node whose data to keep when the
         * nodes' data cannot tell which is newest (see README "Day 2"). Others resync from it.
         */
        recoverFrom: nodeName.optional(),
        /** Set to true to run with fewer than 3 sentinels (no automatic failover you can trust). */
        allowFewerThanThreeSentinels: z.boolean().default(false),
        /** Private key (OpenSSH or PEM) for every node's SSH user. Secret. */
        sshPrivateKey: privateKey(
            z.string({ error: "is required: pulumi config set --secret redis-ha:sshPrivateKey < ~/.ssh/id_ed25519" }),
            "pass the file's contents, e.g. pulumi config set --secret redis-ha:sshPrivateKey < ~/.ssh/id_ed25519",
        ),
        /**
         * The SSH key being retired, while `sshPrivateKey` holds its successor: each run logs in with it
         * once to authorise the new key; once it is removed from the config, a run takes its public key
         * off the servers. Secret. See README "Rotating credentials".
         */
        previousSshPrivateKey: privateKey(
            z.string(),
            "pass the old key file's contents, e.g. pulumi config get redis-ha:sshPrivateKey | pulumi config set --secret redis-ha:previousSshPrivateKey",
        ).optional(),
        /**
         * Passwords being retired, by key (e.g. appPassword), while the key itself holds the new one:
         * Redis and Sentinel accept both until the entry is removed. Secret. README "Rotating credentials".
         */
        previousPasswords: z
            .strictObject(Object.fromEntries(ROTATING_KEYS.map((k) => [k, password(`previousPasswords.${k}`).optional()])) as Record<RotatingKey, z.ZodOptional<ReturnType<typeof password>>>)
            .optional(),
        /** Raise it (any new number) to restart every node in the safe order: replicas, then the master after a handover. Default: 0. */
        rollingRestart: count(0, 1_000_000).default(0),
        /** Seconds to keep retrying SSH while a server boots. Default: 60. */
        sshTimeoutSeconds: count(1, 3600).default(60),
        /** How Redis and Sentinel run: Debian's packages and units, or Docker containers. Default: packages. */
        runtime: z.enum(["packages", "docker"], { error: 'must be "packages" or "docker"' }).default("packages"),
        docker: dockerSchema,
        redis: redisSchema,
        sentinel: sentinelSchema,
        kernel: kernelSchema,
        /** Redis ACL user `admin` (all commands). Secret. */
        adminPassword: password("adminPassword"),
        /** Redis ACL user `replication` (replicas to their master). Secret. */
        replicationPassword: password("replicationPassword"),
        /** Redis ACL user `sentinel` (Sentinel to Redis). Secret. */
        sentinelAuthPassword: password("sentinelAuthPassword"),
        /** Sentinel's own password, for clients that ask Sentinel for the master. Secret. */
        sentinelPassword: password("sentinelPassword"),
        /** Redis ACL user `app` (data commands, no admin or dangerous ones). Secret. */
        appPassword: password("appPassword"),
        proxy: proxySchema,
        /** Redis ACL user `healthcheck` (PING and ROLE only), for HAProxy's checks. Secret; with a proxy. */
        healthCheckPassword: password("healthCheckPassword").optional(),
        /** Password of the HAProxy stats page (user `admin`). Secret; with a proxy. */
        statsPassword: password("statsPassword").optional(),
        metrics: metricsSchema,
        tls: tlsSchema,
        /** ACL user `metrics` of Redis and Sentinel (read-only monitoring commands), for the exporter. Secret; with metrics.enabled. */
        metricsPassword: password("metricsPassword").optional(),
        /**
         * With tls.enabled, certificates of your own instead of the program's CA: JSON with the
         * CA's certificate, per node a certificate and key, with tls.authClients the clients'.
         * Secret. README "TLS".
         */
        tlsCertificates: z.string().optional(), // JSON, read by userCertsText below (kept as text: it is re-checked as given)
    })
    .superRefine((cfg, ctx) => {
        const problem = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
        const parsed = cfg.proxy.network === undefined ? undefined : parseNetwork(cfg.proxy.network);
        const network = typeof parsed === "string" ? undefined : parsed; // a bad one is reported on proxy.network
        const seen = new Map<string, number>();
        cfg.nodes.forEach((n, i) => {
            for (const [what, value] of [
                ["name", n.name],
                ["host", `${n.host}:${n.sshPort}`],
                ["privateIp", n.privateIp ?? n.host],
            ] as const) {
                const first = seen.get(`${what}=${value}`);
                if (first !== undefined) problem(["nodes", i, what], `duplicates nodes[${first}].${what} (${value}); every node needs its own`);
                else seen.set(`${what}=${value}`, i);
            }
            if (n.privateIp === undefined && !isIpv4(n.host)) {
                problem(["nodes", i, "privateIp"], `is required when host is a DNS name (${n.host}): set the address Redis should bind`);
            }
            const ip = n.privateIp ?? n.host;
            const unusable = isIpv4(ip) && unusableAddress(ip, network);
            if (unusable) {
                const key = n.privateIp === undefined ? "host" : "privateIp";
                problem(["nodes", i, key], `is ${ip}, ${unusable}, which the other nodes cannot reach; set nodes[${i}].privateIp to the server's address on the private network`);
            }
        });
        const n = cfg.nodes.length;
        if (n > 0 && n < 3 && !cfg.allowFewerThanThreeSentinels) {
            problem(["nodes"], `has ${n} server(s), but Sentinel needs at least 3 in independent failure domains to fail over safely; add servers or set redis-ha:allowFewerThanThreeSentinels true`);
        }
        const names = cfg.nodes.map((x) => x.name);
        if (cfg.initialMaster !== undefined && !names.includes(cfg.initialMaster)) {
            problem(["initialMaster"], `names no node (nodes: ${names.join(", ")}); set it to one of them`);
        }
        if (cfg.recoverFrom !== undefined && !names.includes(cfg.recoverFrom)) {
            problem(["recoverFrom"], `names no node (nodes: ${names.join(", ")}); set it to the node whose data to keep, or remove it`);
        }
        const down = cfg.nodes.filter((x) => x.down).map((x) => x.name);
        if (n > 1 && n - down.length < majority(n)) {
            problem(
                ["nodes"],
                `marks ${down.join(", ")} down, leaving ${n - down.length} of ${n} sentinels: less than a majority (${majority(n)}), so no failover could happen and the group cannot be checked; bring servers back, or replace the dead ones (README "Day 2")`,
            );
        }
        if (cfg.sentinel.quorum !== undefined && cfg.sentinel.quorum > n) {
            problem(["sentinel", "quorum"], `is ${cfg.sentinel.quorum} but there are only ${n} sentinels, so no failover could ever happen; use at most ${n} (a majority: ${majority(n)})`);
        }
        if (n > 1 && cfg.redis.minReplicasToWrite > n - 1) {
            problem(["redis", "minReplicasToWrite"], `is ${cfg.redis.minReplicasToWrite} but there are only ${n - 1} replicas, so the master would refuse every write; use at most ${n - 1}`);
        }
        const master = cfg.initialMaster ?? names[0];
        if (n > 1 && cfg.nodes.every((x) => x.name === master || x.replicaPriority === 0)) {
            problem(["nodes"], "gives every replica replicaPriority 0, so Sentinel could never promote one; give at least one replica a priority above 0");
        }
        if (cfg.sentinel.failoverTimeout <= cfg.sentinel.downAfterMilliseconds) {
            problem(
                ["sentinel", "failoverTimeout"],
                `is ${cfg.sentinel.failoverTimeout} ms, not more than redis-ha:sentinel.downAfterMilliseconds (${cfg.sentinel.downAfterMilliseconds} ms), so a failover would time out before it could finish; make it larger (Sentinel's default: 180000) or lower downAfterMilliseconds`,
            );
        }
        const portClash = (path: [string, string], port: number, other: string, why: string) =>
            problem(path, `is ${port}, the same as redis-ha:${other}: ${why}, and two services cannot listen on one port; give ${path.join(".")} another port`);
        if (cfg.sentinel.port === cfg.redis.port) {
            portClash(["sentinel", "port"], cfg.sentinel.port, "redis.port", "Redis and Sentinel both listen on every node's private address");
        }
        cfg.redis.appChannels.forEach((pattern, i) => {
            if (pattern !== "*" && globCanMatchPrefix(pattern, SENTINEL_CHANNEL_PREFIX)) {
                problem(
                    ["redis", "appChannels", i],
                    `is ${pattern}, which can match Sentinel's own channels (__sentinel__:*): the sentinels trust what is published there, so an application could announce a fake master; use a prefix of your own, such as app:* ("*" alone already leaves Sentinel's channels out)`,
                );
            }
        });
        if (!cfg.redis.appendonly && cfg.redis.save === "") {
            problem(["redis", "save"], 'is "" and redis.appendonly is false: a master without persistence that restarts comes back empty and wipes its replicas; keep one of them');
        }
        const px = cfg.proxy;
        if (px.nodes.length > 0) {
            px.nodes.forEach((name, i) => {
                if (!names.includes(name)) problem(["proxy", "nodes", i], `names no node (nodes: ${names.join(", ")}); proxies run on nodes of the cluster`);
                if (px.nodes.indexOf(name) !== i) problem(["proxy", "nodes", i], `lists ${name} twice`);
            });
            const ips = new Set(cfg.nodes.map((x) => x.privateIp ?? x.host));
            const proxyIps = cfg.nodes.filter((x) => px.nodes.includes(x.name)).map((x) => [x.name, x.privateIp ?? x.host] as const);
            for (const [i, name] of px.nodes.entries()) {
                const ip = proxyIps.find(([proxy]) => proxy === name)?.[1];
                if (network && ip !== undefined && isIpv4(ip) && !inNetwork(ip, network)) {
                    problem(["proxy", "nodes", i], `is ${name}, whose private address ${ip} is outside redis-ha:proxy.network (${networkText(network)}); the VIPs can only move between nodes on that network: fix redis-ha:proxy.network or the node's privateIp`);
                }
            }
            for (const [port, other] of [[cfg.redis.port, "redis.port"], [cfg.sentinel.port, "sentinel.port"]] as const) {
                if (px.statsPort === port) portClash(["proxy", "statsPort"], port, other, "on the proxy nodes HAProxy's stats page binds the same private address");
            }
            // Without proxy.network, the VIPs belong in the /24 that every proxy node shares.
            const prefixes = new Set(proxyIps.map(([, ip]) => ip.split(".").slice(0, 3).join(".")));
            const implied = !network && prefixes.size === 1 && isIpv4(proxyIps[0][1]) ? { base: ipv4Number(`${[...prefixes][0]}.0`), bits: 24 } : undefined;
            if (!network && prefixes.size > 1 && proxyIps.every(([, ip]) => isIpv4(ip))) {
                problem(
                    ["proxy", "network"],
                    `is required: the proxy nodes' private addresses (${proxyIps.map(([name, ip]) => `${name} ${ip}`).join(", ")}) are not in one /24, so the VIPs' network is unclear; set it, e.g. pulumi config set --path redis-ha:proxy.network ${coveringNetwork(proxyIps.map(([, ip]) => ip))}`,
                );
            }
            for (const key of ["writeVip", "readVip"] as const) {
                const vip = px[key];
                const unusable = vip !== undefined && unusableAddress(vip, network);
                if (vip === undefined) problem(["proxy", key], `is required with proxy.nodes: a free address on the nodes' network, e.g. pulumi config set --path redis-ha:proxy.${key} 10.211.11.100`);
                else if (ips.has(vip)) problem(["proxy", key], `is ${vip}, which a node already uses; pick a free address`);
                else if (unusable) problem(["proxy", key], `is ${vip}, ${unusable}, which clients cannot reach; pick a free address on the proxy nodes' network`);
                else if (network && !inNetwork(vip, network)) {
                    problem(["proxy", key], `is ${vip}, outside redis-ha:proxy.network (${networkText(network)}); pick a free address in it, or correct redis-ha:proxy.network`);
                } else if (implied && !inNetwork(vip, implied)) {
                    problem(
                        ["proxy", key],
                        `is ${vip}, outside the proxy nodes' network ${networkText(implied)}: the VIP moves between the proxy nodes, so it must be on their network; pick a free address in ${networkText(implied)}, or if the network is wider, say so: pulumi config set --path redis-ha:proxy.network ${coveringNetwork([...proxyIps.map(([, ip]) => ip), vip])}`,
                    );
                }
            }
            if (px.writeVip !== undefined && px.writeVip === px.readVip) problem(["proxy", "readVip"], "must differ from proxy.writeVip");
            for (const key of PROXY_PASSWORD_KEYS) {
                if (cfg[key] === undefined) problem([key], `is required with a proxy: pulumi config set --secret redis-ha:${key} "$(openssl rand -base64 32 | tr -d '/+=')"`);
            }
        }
        if (cfg.metrics.enabled) {
            if (cfg.metricsPassword === undefined) problem(["metricsPassword"], `is required with metrics.enabled: pulumi config set --secret redis-ha:metricsPassword "$(openssl rand -base64 32 | tr -d '/+=')"`);
            for (const [port, other] of [[cfg.redis.port, "redis.port"], [cfg.sentinel.port, "sentinel.port"], ...(px.nodes.length > 0 ? [[px.statsPort, "proxy.statsPort"] as const] : [])] as const) {
                if (cfg.metrics.port === port) portClash(["metrics", "port"], port, other, "the exporter listens on every node's private address");
            }
        }
        if (cfg.tls.enabled) {
            if (cfg.tls.renewBeforeDays >= cfg.tls.validityDays) {
                problem(["tls", "renewBeforeDays"], `is ${cfg.tls.renewBeforeDays}, not less than redis-ha:tls.validityDays (${cfg.tls.validityDays}): every run would issue the certificates anew; make it smaller (default: 30)`);
            }
            if (cfg.runtime === "docker") problem(["tls", "enabled"], "is true, which the packages runtime supports only so far; set redis-ha:runtime packages, or leave TLS off");
            if (cfg.metrics.enabled) problem(["tls", "enabled"], "is true together with metrics.enabled: the exporter does not speak TLS to the nodes yet; turn one of them off");
        }
        const read = cfg.tlsCertificates === undefined ? undefined : userCertsText.safeParse(cfg.tlsCertificates);
        for (const issue of read?.error?.issues ?? []) problem(["tlsCertificates", ...(issue.path as (string | number)[])], issue.message);
        const own = read?.data;
        if (own && !cfg.tls.enabled) problem(["tlsCertificates"], "is set but tls.enabled is false: set redis-ha:tls.enabled true to use them, or remove the key");
        if (own && cfg.tls.enabled) {
            let ca: X509Certificate | undefined;
            try {
                ca = new X509Certificate(own.ca);
                if (!ca.ca) problem(["tlsCertificates", "ca"], "is not a CA certificate (basicConstraints CA:TRUE): give the certificate of the CA that signed the nodes'");
            } catch (e) {
                problem(["tlsCertificates", "ca"], `is not a certificate Node can read: ${(e as Error).message}`);
            }
            const vips = proxyVips(cfg.proxy);
            for (const n of cfg.nodes) {
                const p = own.nodes[n.name];
                if (!p) problem(["tlsCertificates", "nodes"], `has no certificate for node ${n.name}: add "${n.name}": {"cert": …, "key": …}, or remove tlsCertificates to let the program issue them`);
                else if (ca) for (const why of certProblems(ca, p, [n.privateIp ?? n.host, ...vips])) problem(["tlsCertificates", "nodes", n.name], why);
            }
            for (const name of Object.keys(own.nodes)) {
                if (!cfg.nodes.some((n) => n.name === name)) problem(["tlsCertificates", "nodes", name], "names no node: remove it");
            }
            for (const client of ["app", "deployer"] as const) {
                const p = own.clients?.[client];
                if (cfg.tls.authClients && !p) problem(["tlsCertificates", "clients"], `has no ${client} certificate, which tls.authClients needs (${client === "app" ? "the outputs hand it to applications" : "the program's own connections present it"})`);
                else if (p && ca) for (const why of certProblems(ca, p, [])) problem(["tlsCertificates", "clients", client], why);
            }
        }
        const byValue = new Map<string, string>();
        for (const key of [...PASSWORD_KEYS, ...PROXY_PASSWORD_KEYS, "metricsPassword"] as const) {
            const value = cfg[key];
            if (value === undefined) continue;
            const other = byValue.get(value);
            if (other) problem([key], `is the same as redis-ha:${other}; every user needs its own password`);
            else byValue.set(value, key);
        }
        for (const key of ROTATING_KEYS) {
            const old = cfg.previousPasswords?.[key];
            if (old === undefined) continue;
            const holder = byValue.get(old);
            if (holder === key) problem(["previousPasswords", key], `is the same as redis-ha:${key}: set the new password in redis-ha:${key} and keep the old one here`);
            else if (holder) problem(["previousPasswords", key], `is the same as redis-ha:${holder}; every user needs its own password`);
            else if (key === "healthCheckPassword" && cfg.healthCheckPassword === undefined) problem(["previousPasswords", key], "is set but there is no proxy (no healthCheckPassword); remove it");
        }
        if (cfg.previousSshPrivateKey !== undefined && cfg.previousSshPrivateKey.trim() === cfg.sshPrivateKey.trim()) {
            problem(["previousSshPrivateKey"], "is the same as redis-ha:sshPrivateKey: put the new key in sshPrivateKey and the old one here");
        }
        const src = cfg.redis.packageSource;
        if (src.type === "apt") {
            for (const key of ["url", "suite", "signingKey"] as const) {
                if (src[key] === undefined) problem(["redis", "packageSource", key], `is required with packageSource.type apt (README "Package source" gives redis.io's)`);
            }
            if (cfg.runtime === "docker") problem(["redis", "packageSource", "type"], "is apt, which the packages runtime installs from; with docker, the image decides what runs");
        } else {
            for (const key of ["url", "suite", "signingKey"] as const) {
                if (src[key] !== undefined) problem(["redis", "packageSource", key], 'is set but packageSource.type is "debian": set type apt to use the repository, or remove it');
            }
        }
        if (cfg.redis.server !== "redis" && cfg.runtime === "docker") {
            problem(["redis", "server"], `is ${cfg.redis.server}, which the packages runtime runs (Debian's packages); with docker, keep redis (the image decides what runs), or set redis-ha:runtime packages`);
        }
        if (cfg.redis.packageVersion !== undefined && cfg.runtime === "docker") {
            problem(["redis", "packageVersion"], "applies to the packages runtime only; with docker, pin the version in redis-ha:docker.image");
        }
    });

export type StackConfig = z.infer<typeof stackConfigSchema>;
export type NodeConfig = z.infer<typeof nodeSchema> & { privateIp: string };

/** Validated config with the defaults that depend on other keys filled in. */
export interface ResolvedConfig extends Omit<StackConfig, "nodes" | "initialMaster" | "sentinel"> {
    nodes: NodeConfig[];
    initialMaster: string;
    sentinel: StackConfig["sentinel"] & { quorum: number };
}

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`invalid stack configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "ConfigError";
    }
}

/** `nodes[1].host` → `redis-ha:nodes[1].host`, the spelling `pulumi config set --path` takes. */
function keyOf(path: ReadonlyArray<PropertyKey>): string {
    let key = CONFIG_NAMESPACE + ":";
    path.forEach((p, i) => {
        key += typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`;
    });
    return key;
}

/** Problems with raw config values, as `<key> <what is wrong and the fix>`, or the resolved config. */
function validate(raw: Record<string, unknown>): { problems: string[]; config?: ResolvedConfig } {
    const result = stackConfigSchema.safeParse(raw);
    if (!result.success) return { problems: result.error.issues.map((i) => `${keyOf(i.path)} ${i.message}`) };
    const cfg = result.data;
    return {
        problems: [],
        config: {
            ...cfg,
            nodes: cfg.nodes.map((n) => ({ ...n, privateIp: n.privateIp ?? n.host })),
            initialMaster: cfg.initialMaster ?? cfg.nodes[0].name,
            sentinel: { ...cfg.sentinel, quorum: cfg.sentinel.quorum ?? majority(cfg.nodes.length) },
        },
    };
}

/** Parses raw config values (as read from the stack) or throws a ConfigError listing every problem. */
export function parseStackConfig(raw: Record<string, unknown>): ResolvedConfig {
    const { problems, config } = validate(raw);
    if (!config) throw new ConfigError(problems);
    return config;
}

const STRING_KEYS = new Set<string>(["initialMaster", "recoverFrom", "runtime", ...SECRET_KEYS]);
const KNOWN_KEYS = Object.keys(stackConfigSchema.shape);

/**
 * Parses the stack's config as the engine hands it over (`pulumi.runtime.allConfig()`: every
 * value a string, keys as `redis-ha:<key>`). Reading the raw map keeps secrets readable for
 * validation without a warning per key; the caller wraps them with pulumi.secret again.
 */
export function parseAllConfig(all: Record<string, string>): ResolvedConfig {
    const raw: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const [fullKey, value] of Object.entries(all)) {
        if (!fullKey.startsWith(CONFIG_NAMESPACE + ":")) continue;
        const key = fullKey.slice(CONFIG_NAMESPACE.length + 1);
        if (!KNOWN_KEYS.includes(key)) {
            problems.push(`${fullKey} is not a known key (known: ${KNOWN_KEYS.join(", ")}); remove it with pulumi config rm ${fullKey}`);
        } else if (STRING_KEYS.has(key)) {
            raw[key] = value;
        } else {
            try {
                raw[key] = JSON.parse(value);
            } catch {
                problems.push(`${fullKey} is not a number, boolean or structure; set it with pulumi config set --path, e.g. pulumi config set --path ${fullKey}.port 6379`);
            }
        }
    }
    const { problems: invalid, config } = validate(raw);
    problems.push(...invalid);
    if (problems.length > 0 || !config) throw new ConfigError(problems);
    return config;
}
