// Pure renderers for the VIP proxy: haproxy.cfg (holds passwords: the caller keeps the result
// secret) and keepalived.conf (no secrets; `@IFACE@` is filled in on the host).
import { majority, type NodeConfig, type ResolvedConfig } from "./config";
import { TLS_DIR } from "./render";

export interface ProxySecrets {
    /** Redis ACL user `healthcheck`. */
    healthCheck: string;
    /** Sentinel ACL user `discovery`. */
    sentinel: string;
    /** Stats page, user `admin`. */
    stats: string;
}

/** Where vip-proxy.sh installs assets/haproxy-guard.lua, which haproxy.cfg loads. */
export const GUARD_LUA_PATH = "/etc/haproxy/redis-ha-guard.lua";

/**
 * How often the Lua guard counts the sentinels' votes: four times per check interval, so that it
 * adds at most a quarter interval to the check that noticed (a sweep costs next to nothing).
 */
function guardIntervalMs(cfg: ResolvedConfig): number {
    return Math.max(50, Math.floor(cfg.proxy.checkIntervalMs / 4));
}

/**
 * How long a check waits for a reply, and any connection (checks too) for the server to accept:
 * half a check interval. A check connects within min(timeout connect, inter), so a powered-off
 * master fails each check after this long, not after a whole second.
 */
function checkTimeoutMs(cfg: ResolvedConfig): number {
    return Math.max(200, Math.floor(cfg.proxy.checkIntervalMs / 2));
}

/** Checks of servers that are down or changing state: five per check interval. */
function fastIntervalMs(cfg: ResolvedConfig): number {
    return Math.max(50, Math.floor(cfg.proxy.checkIntervalMs / 5));
}

/** Port the proxy listens on, on both VIPs. */
export function proxyPort(cfg: ResolvedConfig): number {
    return cfg.proxy.port ?? cfg.redis.port;
}

// Passwords may hold any printable character but space (" ' \ $ # : …), so nothing reaches
// haproxy.cfg as it is. Commands go out in RESP's multibulk form (each argument prefixed by its
// length, so Redis takes any byte as part of it), and each command or password is one
// double-quoted argument in which everything but letters and digits is written \xHH: HAProxy
// decodes those bytes and nothing else there (no `$NAME` expansion, no `#` comment, no end of
// the argument at a quote or space). Single quotes pass the regular expressions through untouched.

/** Backend names are derived from node names, which are [a-z0-9-]. */
const id = (name: string) => name.replace(/-/g, "_");

/** A Redis command as RESP sends it (multibulk): any byte may stand in any argument. */
function resp(...args: string[]): string {
    return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a, "utf8")}\r\n${a}\r\n`).join("");
}

/** `value` as one double-quoted haproxy.cfg argument: letters and digits as they are, CR LF as \r\n, any other byte \xHH. */
function haproxyQuote(value: string): string {
    let out = "";
    for (const b of Buffer.from(value, "utf8")) {
        const c = String.fromCharCode(b);
        if (/[A-Za-z0-9]/.test(c)) out += c;
        else if (b === 0x0d) out += "\\r";
        else if (b === 0x0a) out += "\\n";
        else out += "\\x" + b.toString(16).padStart(2, "0");
    }
    return `"${out}"`;
}

const send = (...command: string[]) => `    tcp-check send ${haproxyQuote(resp(...command))}`;

/**
 * How a check connects: in clear, or with tls.enabled over TLS, verifying the node's certificate
 * against the cluster's CA and presenting the node's own (tls.authClients). Only the checks:
 * clients' traffic passes through as it is (TCP), TLS from the client to the node.
 */
const checkConnect = (cfg: ResolvedConfig) => (cfg.tls.enabled ? "    tcp-check connect ssl" : "    tcp-check connect");
const checkTls = (cfg: ResolvedConfig) =>
    cfg.tls.enabled ? ` check-ssl verify required ca-file ${TLS_DIR}/ca.crt${cfg.tls.authClients ? ` crt ${TLS_DIR}/node.pem` : ""}` : "";

/** A check that logs in as the healthcheck user and expects ROLE's answer to match `role`. */
function roleCheck(cfg: ResolvedConfig, password: string, role: string): string[] {
    return [
        "    option tcp-check",
        checkConnect(cfg),
        send("AUTH", "healthcheck", password),
        "    tcp-check expect min-recv 5 string +OK", // conclusive once 5 bytes are in: +OK CR LF or an error
        send("ROLE"),
        `    tcp-check expect min-recv 0 rstring '${role}'`,
        send("QUIT"),
    ];
}

/**
 * haproxy.cfg for one proxy node. A node receives new connections for writes only while it
 * answers ROLE as master (checked as Redis's `healthcheck` user) AND a majority of sentinels name
 * it as master (asked as Sentinel's `discovery` user). Established sessions are cut as soon as
 * either stops: by `on-marked-down shutdown-sessions` when the node's own check fails, by the
 * Lua guard (assets/haproxy-guard.lua) when the sentinels' majority goes, even while the node
 * still says master (a demoted master cut off together with this proxy). Clients then reconnect
 * to the new master. Reads go to replicas whose link to the master is up, else (if configured)
 * to the master.
 */
export function renderHaproxyConfig(cfg: ResolvedConfig, self: NodeConfig, secrets: ProxySecrets): string {
    const px = cfg.proxy;
    const needed = majority(cfg.nodes.length);
    const lines: string[] = [];
    const add = (...l: string[]) => lines.push(...l);

    add(
        "# Managed by redis-ha (Pulumi): rewritten on change, then HAProxy reloads: the old process closes its",
        "# sessions to masters at once (redis-ha-guard.lua), the others finish there.",
        "global",
        "    log /dev/log local0",
        "    stats socket /run/haproxy/admin.sock mode 660 level admin",
        "    stats timeout 30s",
        // Servers start UP after a reload unless their last known state is loaded: without it a
        // replica listed first could take writes until its check fails. vip-proxy.sh saves it.
        "    server-state-file /var/lib/haproxy/server-state",
        "    user haproxy",
        "    group haproxy",
        `    maxconn ${px.maxConnections}`,
        // The guard's settings come as environment variables, set before lua-load, so the Lua
        // file itself is the same on every node.
        "    # The guard closes the sessions to a node that fewer than a majority of sentinels name.",
        `    setenv REDIS_HA_GUARD_MAJORITY ${needed}`,
        `    setenv REDIS_HA_GUARD_INTERVAL_MS ${guardIntervalMs(cfg)}`,
        `    lua-load ${GUARD_LUA_PATH}`,
        "",
        "defaults",
        "    log global",
        "    load-server-state-from-file global",
        "    mode tcp",
        "    option dontlognull",
        "    option clitcpka",
        "    option srvtcpka",
        // A server that went away unnoticed yet (its host powered off): give up on it quickly
        // and send the connection to another one that qualifies.
        `    timeout connect ${checkTimeoutMs(cfg)}ms`,
        "    retries 2",
        "    option redispatch 1",
        "    timeout client 1h",
        "    timeout server 1h",
        // A reply that does not match must fail the check at once, not when the check times
        // out: every expect below either waits for the whole reply first or is conclusive
        // (min-recv 0), and timeout check is short.
        `    timeout check ${checkTimeoutMs(cfg)}ms`,
        // A server that is down (a replica, for a master check) or changing state is checked
        // five times as often: a new master is routed to a fraction of a second after it is
        // promoted, at the cost of more checks against the servers that are down.
        `    default-server inter ${px.checkIntervalMs} fastinter ${fastIntervalMs(cfg)} downinter ${fastIntervalMs(cfg)} fall 2 rise 2 on-marked-down shutdown-sessions`,
        "",
    );

    add("# Checks send Redis commands in RESP form; in double quotes \\xHH stands for one byte.", "");
    for (const n of cfg.nodes) {
        add(
            `# ${n.name} is master for the sentinels that name it (one check per sentinel). One failed`,
            "# check takes a sentinel's vote away: this errs towards not routing. Fewer than a",
            `# majority: no new connection goes to ${n.name} and the Lua guard cuts its sessions.`,
            "# One answer gives the vote back: a sentinel names a new master only once its failover",
            "# has promoted it, and a majority of them must agree. Votes are checked as often as",
            "# servers that are down, so that a vote for the old master outlives a failover briefly.",
            `backend sentinels_name_${id(n.name)}`,
            `    default-server inter ${fastIntervalMs(cfg)} fall 1 rise 1`,
            "    option tcp-check",
            checkConnect(cfg),
            send("AUTH", "discovery", secrets.sentinel),
            "    tcp-check expect min-recv 5 string +OK", // conclusive once 5 bytes are in: +OK CR LF or an error
            send("SENTINEL", "get-master-addr-by-name", cfg.sentinel.masterName),
            // First the whole reply (any address), then, conclusively, the address as a RESP bulk
            // string: 10.0.0.1 must not match 10.0.0.12.
            "    tcp-check expect rstring '^\\*2\\r\\n\\$[0-9]+\\r\\n[0-9.]+\\r\\n\\$[0-9]+\\r\\n[0-9]+\\r\\n'",
            `    tcp-check expect min-recv 0 rstring '^\\*2\\r\\n\\$[0-9]+\\r\\n${n.privateIp.replace(/\./g, "\\.")}\\r\\n'`,
            send("QUIT"),
            ...cfg.nodes.map((s) => `    server sentinel_${id(s.name)} ${s.privateIp}:${cfg.sentinel.port} check${checkTls(cfg)}`),
            "",
            `# ${n.name} itself says it is master.`,
            `backend redis_master_${id(n.name)}`,
            ...roleCheck(cfg, secrets.healthCheck, "^\\*3\\r\\n\\$6\\r\\nmaster\\r\\n"),
            `    server ${id(n.name)} ${n.privateIp}:${cfg.redis.port} check${checkTls(cfg)}`,
            "",
        );
    }

    add(
        "# Replicas whose link to the master is up (ROLE says connected).",
        "backend redis_replicas",
        "    balance leastconn",
        ...roleCheck(cfg, secrets.healthCheck, "(?s)^\\*5\\r\\n\\$5\\r\\nslave\\r\\n.*\\r\\nconnected\\r\\n"),
        ...cfg.nodes.map((n) => `    server ${id(n.name)} ${n.privateIp}:${cfg.redis.port} check${checkTls(cfg)}`),
        "",
        "# No node qualifies: connections are closed at once.",
        "backend redis_none",
        "",
    );

    // A node qualifies for writes while it says master and a majority of sentinels name it.
    const qualifies = (n: NodeConfig) => `{ srv_is_up(redis_master_${id(n.name)}/${id(n.name)}) } { nbsrv(sentinels_name_${id(n.name)}) ge ${needed} }`;
    // Two nodes that both qualify mean that one still holds votes a check has not taken back
    // since a failover (a sentinel names one master at a time), e.g. an old master restarted
    // before its votes went: until the checks settle, neither gets a new connection.
    const conflicts = cfg.nodes.flatMap((a, i) =>
        cfg.nodes.slice(i + 1).map((b) => `    use_backend redis_none if ${qualifies(a)} ${qualifies(b)}`),
    );
    const toMaster = cfg.nodes.map((n) => `    use_backend redis_master_${id(n.name)} if ${qualifies(n)}`);
    add("frontend redis_write", `    bind ${px.writeVip}:${proxyPort(cfg)}`, ...conflicts, ...toMaster, "    default_backend redis_none", "");
    add(
        "frontend redis_read",
        `    bind ${px.readVip}:${proxyPort(cfg)}`,
        "    use_backend redis_replicas if { nbsrv(redis_replicas) gt 0 }",
        ...(px.readFallbackToMaster ? [...conflicts, ...toMaster] : []),
        "    default_backend redis_none",
        "",
    );
    add(
        "listen stats",
        `    bind ${self.privateIp}:${px.statsPort}`,
        "    mode http",
        "    stats enable",
        "    stats uri /",
        "    stats refresh 5s",
        `    stats auth ${haproxyQuote(`admin:${secrets.stats}`)}`, // the first colon ends the user name
        "",
    );
    return lines.join("\n");
}

/**
 * keepalived.conf for one of several proxy nodes: one VRRP instance holding both VIPs, unicast
 * to the other proxies, following HAProxy's health, without preemption (no flapping back).
 * The holder advertises as often as HAProxy checks a server that is down (VRRP version 3 takes
 * fractions of a second): the VIPs move about three adverts after their holder died, 0.7 s with
 * the default check interval instead of 3.5 s with VRRP's usual second.
 */
export function renderKeepalivedConfig(cfg: ResolvedConfig, self: NodeConfig, index: number): string {
    const px = cfg.proxy;
    const peers = cfg.nodes.filter((n) => px.nodes.includes(n.name) && n.name !== self.name);
    return [
        "# Managed by redis-ha (Pulumi).",
        "global_defs {",
        `    router_id redis_ha_${id(self.name)}`,
        "    vrrp_version 3",
        "    script_user root",
        "    enable_script_security",
        "}",
        "",
        "vrrp_script haproxy_alive {",
        '    script "/usr/bin/systemctl is-active --quiet haproxy"',
        "    interval 1",
        "    fall 2",
        "    rise 2",
        "}",
        "",
        "vrrp_instance redis_vips {",
        "    state BACKUP",
        "    nopreempt",
        "    interface @IFACE@",
        `    virtual_router_id ${px.virtualRouterId}`,
        `    priority ${Math.max(1, 150 - 10 * index)}`,
        `    advert_int ${fastIntervalMs(cfg) / 1000}`,
        `    unicast_src_ip ${self.privateIp}`,
        "    unicast_peer {",
        ...peers.map((p) => `        ${p.privateIp}`),
        "    }",
        "    virtual_ipaddress {",
        `        ${px.writeVip}/32 dev @IFACE@`,
        `        ${px.readVip}/32 dev @IFACE@`,
        "    }",
        "    track_script {",
        "        haproxy_alive",
        "    }",
        "}",
        "",
    ].join("\n");
}
