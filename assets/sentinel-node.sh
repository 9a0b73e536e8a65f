#!/usr/bin/env bash
# Configures redis-sentinel on one node. Runs after lib/common.sh (prepended).
#
# First run: writes /etc/redis/sentinel.conf, monitoring the master the running sentinels
# name, or else the initial master. From then on Sentinel owns that file (it records the
# master, replicas and other sentinels there), and this script never rewrites it: later runs
# change timings, quorum and auth at runtime with SENTINEL SET, which Sentinel persists itself.
#
# stdin: "name password" lines for sentinel (Redis ACL user) and sentinel-client (Sentinel's own).
# Environment: SENTINEL_PORT, REDIS_PORT, SELF_IP, INITIAL_MASTER_IP, NODE_IPS, SENTINEL_PEERS,
#   MASTER_NAME, QUORUM, DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS, PARALLEL_SYNCS, RUNTIME (as in
#   redis-node.sh).
# Prints one JSON line.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=sentinel-node
conf=/etc/redis/sentinel.conf
state=/var/lib/redis-ha
restarted=false
initialized=false

scli() { REDISCLI_AUTH=$(secret sentinel-client) redis-cli --no-auth-warning -h 127.0.0.1 -p "$SENTINEL_PORT" "$@"; }


render_conf() { # render_conf <master ip> <master port>
    local pass
    pass=$(secret sentinel-client)
    echo "# Written once by redis-ha at creation. Sentinel owns this file now; redis-ha changes"
    echo "# settings at runtime with SENTINEL SET and never rewrites it."
    echo "port $SENTINEL_PORT"
    echo "bind $SELF_IP 127.0.0.1"
    echo "protected-mode no"
    echo "daemonize no"
    echo "supervised systemd"
    echo "pidfile /run/sentinel/redis-sentinel.pid"
    echo "logfile /var/log/redis/redis-sentinel.log"
    echo "dir /var/lib/redis"
    printf 'requirepass "%s"\n' "$pass"
    printf 'sentinel sentinel-pass "%s"\n' "$pass"
    echo "sentinel announce-ip $SELF_IP"
    echo "sentinel resolve-hostnames no"
    echo "sentinel announce-hostnames no"
    echo "sentinel deny-scripts-reconfig yes"
    echo "sentinel monitor $MASTER_NAME $1 $2 $QUORUM"
    echo "sentinel auth-user $MASTER_NAME sentinel"
    printf 'sentinel auth-pass %s "%s"\n' "$MASTER_NAME" "$(secret sentinel)"
    echo "sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS"
    echo "sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS"
    echo "sentinel parallel-syncs $MASTER_NAME $PARALLEL_SYNCS"
}

initialize() {
    local master
    save_original "$conf"
    master=$(discover_master "$MASTER_NAME" "$(secret sentinel-client)" "$SENTINEL_PEERS" "$NODE_IPS")
    [ -n "$master" ] || master="$INITIAL_MASTER_IP $REDIS_PORT"
    info "monitoring $MASTER_NAME at $master"
    # shellcheck disable=SC2086 # "ip port" splits into two arguments on purpose
    render_conf $master | install_if_changed "$conf" >/dev/null
    if service_restart sentinel; then
        restarted=true
        wait_pong sentinel scli
    fi
    touch "$state/sentinel.initialized"
    initialized=true
}

apply_runtime() {
    local out
    service_ensure_running sentinel
    wait_pong sentinel scli
    # -x: the password is the last argument, read from stdin, never on the command line.
    out=$(secret sentinel | scli -x SENTINEL SET "$MASTER_NAME" quorum "$QUORUM" \
        down-after-milliseconds "$DOWN_AFTER_MS" failover-timeout "$FAILOVER_TIMEOUT_MS" \
        parallel-syncs "$PARALLEL_SYNCS" auth-user sentinel auth-pass)
    [ "$out" = OK ] || fatal "SENTINEL SET $MASTER_NAME …: $out"
    info "timings, quorum and auth applied at runtime, no restart"
}

main() {
    require_root
    command -v redis-cli >/dev/null || fatal "redis-cli is not installed (package redis-tools)"
    read_secrets
    if [ -f "$state/sentinel.initialized" ]; then apply_runtime; else initialize; fi
    printf '{"initialized":%s,"restarted":%s,"master":"%s"}\n' "$initialized" "$restarted" \
        "$(scli SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | tr '\n' ' ' | sed 's/ $//; s/ /:/')"
}

main "$@"
