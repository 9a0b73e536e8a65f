#!/usr/bin/env bash
# Configures redis-server (or valkey-server: SERVER in lib/common.sh) on one node. Runs after
# lib/common.sh (prepended).
#
# First run (STEP=create, or no marker yet): writes /etc/redis/redis.conf from scratch (Debian's
# original is kept aside). When a majority of the sentinels name a master, it becomes a replica
# of it; otherwise (a new cluster, or one re-created after `pulumi destroy`) it starts on its own
# with whatever data it holds, and reports that data (assets/data-survey.sh, read before the
# restart): the master election (components/master-election.ts) then picks the node with the
# newest data and makes the others its replicas. A create also ignores a marker left by a
# deployment whose removal never ran (the server was down then): Pulumi knows of no Redis here.
# From then on Redis owns that file (it rewrites it on failover), and this script never
# rewrites it again: later runs apply the managed settings at runtime (CONFIG SET, then
# CONFIG REWRITE) and reload the ACL file (ACL LOAD), without a restart.
#
# stdin: "name password" lines for admin, replication, sentinel, app (and healthcheck with a
#   proxy): the Redis ACL users; discovery: Sentinel's user for clients, to ask who is master;
#   previous-<name>: a password being retired, accepted next to the new one (README "Rotating
#   credentials"); with TLS (TLS_DIR set), tls-ca, tls-cert and tls-key: the cluster's CA, this
#   node's certificate and its key, each base64 on one line.
# Variables set in the script: STEP (create or update), DATA_SURVEY (assets/data-survey.sh),
#   STOP_HOOK (assets/hooks/redis-stop.sh: systemd runs it before it stops Redis).
# Environment: REDIS_PORT, SELF_IP, NODE_IPS, SENTINEL_PEERS, MASTER_NAME,
#   REDIS_SETTINGS ("key value" lines, applied at runtime), RESTART_SETTINGS ("key value" lines
#   Redis reads only at start: written here at creation, later by rolling-restart.sh),
#   ACL_RULES ("user rules" lines),
#   RUNTIME (packages: Debian's unit; docker: the container Pulumi creates after this first run),
#   SERVER (redis or valkey), TLS_DIR (with TLS: where the node's TLS files go; Sentinel and
#   HAProxy read them there too).
# Prints one JSON line: what it did and the node's role.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=redis-node
conf=$SERVER_ETC/$SERVER.conf
acl=$SERVER_ETC/users.acl
state=/var/lib/redis-ha
restarted=false
initialized=false
applied=0
survey=null

rcli() { admin_cli "$REDIS_PORT" "$@"; }


# The ACL file: the default user off, our users with SHA-256 password hashes (no clear text);
# a user whose password rotates has two.
render_acl() {
    local name rules
    echo "user default off resetkeys resetchannels -@all"
    # The stop hook's user: no keys, only what a shutdown that loses nothing takes (CONFIG SET
    # gives no more than root on this host has, and only root reads its password).
    [ "${RUNTIME:-packages}" != packages ] ||
        echo "user hooks on #$(printf '%s' "$(hooks_password)" | sha256sum | cut -d' ' -f1) resetkeys resetchannels &redis-ha:hooks -@all +role +info +config|get +config|set +publish +wait +shutdown"
    while read -r name rules; do
        [ -n "$name" ] || continue
        echo "user $name on $(password_rules "$name") $rules"
    done <<<"$ACL_RULES"
}

# With TLS: the node's files from stdin. The key is for root and the server's group (Redis and
# Sentinel run as its user), node.pem (certificate and key) for root only: HAProxy reads it as
# root before it drops its rights. Redis reads new files when tls-cert-file is set again
# (apply_runtime sets it at every run). Prints "changed" for each file that changed.
install_tls() {
    [ -n "${TLS_DIR:-}" ] || return 0
    install -d -m 0750 -o root -g "$SERVER" "$TLS_DIR"
    secret tls-ca | base64 -d | install_if_changed "$TLS_DIR/ca.crt" "root:$SERVER" 0644
    secret tls-cert | base64 -d | install_if_changed "$TLS_DIR/node.crt" "root:$SERVER" 0644
    secret tls-key | base64 -d | install_if_changed "$TLS_DIR/node.key" "root:$SERVER" 0640
    { secret tls-cert | base64 -d; secret tls-key | base64 -d; } | install_if_changed "$TLS_DIR/node.pem" root:root 0600
}

render_conf() { # render_conf <replicaof "ip port" or empty>
    echo "# Written once by redis-ha at creation. Redis owns this file now (CONFIG REWRITE,"
    echo "# failovers); redis-ha changes settings at runtime and never rewrites it."
    echo "daemonize no"
    echo "supervised systemd"
    echo "pidfile /run/$SERVER/$SERVER-server.pid"
    echo "logfile $SERVER_LOGS/$SERVER-server.log"
    echo "dir $SERVER_DATA"
    echo "aclfile $acl"
    echo "appendfsync everysec"
    printf '%s\n' "$REDIS_SETTINGS" "$RESTART_SETTINGS"
    echo "masteruser replication"
    echo "masterauth $(conf_quote "$(secret replication)")"
    [ -z "$1" ] || echo "replicaof $1"
}

# systemd runs STOP_HOOK (assets/hooks/redis-stop.sh) before it stops redis-server.
install_stop_hook() {
    [ "${RUNTIME:-packages}" = packages ] || return 0
    install_hook "$(unit_of redis)" redis-stop "$STOP_HOOK" "# Managed by redis-ha: a master gives its replicas every write before it stops (assets/hooks/redis-stop.sh).
[Service]
Environment=REDIS_PORT=$REDIS_PORT SERVER=$SERVER${TLS_DIR:+ TLS_DIR=$TLS_DIR}
ExecStop=-+/bin/bash /usr/local/lib/redis-ha/redis-stop"
}

initialize() {
    local master
    save_original "$conf"
    master=$(discover_master "$MASTER_NAME" "$SENTINEL_PEERS" "$NODE_IPS")
    if [ -z "$master" ]; then
        survey=$(printf '%s' "$DATA_SURVEY" | bash)
        info "no sentinel majority answers: starting on our own data ($survey); the master election decides"
    fi
    [ "${master%% *}" != "$SELF_IP" ] || master=""
    render_conf "$master" | install_if_changed "$conf" >/dev/null
    if service_restart redis; then
        restarted=true
        wait_pong "$(unit_of redis)" rcli
    fi
    touch "$state/redis.initialized"
    # Started just now with everything current: the rolling restart records its generation afresh.
    rm -f "$state/redis.generation"
    initialized=true
}

apply_runtime() {
    local key value out
    service_ensure_running redis
    wait_pong "$(unit_of redis)" rcli
    [ "$1" != changed ] || [ "$(rcli ACL LOAD)" = OK ] || fatal "ACL LOAD failed: $(rcli ACL LOAD 2>&1)"
    while read -r key value; do
        [ -n "$key" ] || continue
        [ "$value" != '""' ] || value="" # an empty value, as redis.conf spells it
        out=$(rcli CONFIG SET "$key" "$value")
        [ "$out" = OK ] || fatal "CONFIG SET $key $value: $out"
        applied=$((applied + 1))
    done <<<"$REDIS_SETTINGS"
    # -x: the password reaches redis-cli on stdin, never on its command line.
    out=$(secret replication | rcli -x CONFIG SET masterauth)
    [ "$out" = OK ] || fatal "CONFIG SET masterauth: $out"
    out=$(rcli CONFIG REWRITE)
    [ "$out" = OK ] || fatal "CONFIG REWRITE: $out"
    info "applied $applied settings at runtime, no restart"
}

main() {
    local acl_state tls_state role version=""
    require_root
    command -v "$SERVER_CLI" >/dev/null || fatal "$SERVER_CLI is not installed (package $SERVER-tools)"
    read_secrets
    tls_state=$(install_tls)
    [ -z "$tls_state" ] || info "TLS files written to $TLS_DIR"
    acl_state=$(render_acl | install_if_changed "$acl")
    install_stop_hook
    if [ "$STEP" = update ] && [ -f "$state/redis.initialized" ]; then
        apply_runtime "$acl_state"
    else
        initialize
    fi
    role=$(rcli ROLE 2>/dev/null | head -1) || true
    # Valkey reports its own version as valkey_version (redis_version: the Redis it is compatible with).
    version=$(rcli INFO server 2>/dev/null | sed -n "s/^${SERVER}_version:\([^\r]*\).*/\1/p") || true
    printf '{"initialized":%s,"restarted":%s,"settingsApplied":%d,"role":"%s","version":"%s","survey":%s}\n' \
        "$initialized" "$restarted" "$applied" "${role:-not started yet}" "$version" "$survey"
}

main "$@"
