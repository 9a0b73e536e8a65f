#!/usr/bin/env bash
# Configures Debian's prometheus-redis-exporter on one node (metrics.enabled). Runs after
# lib/common.sh (prepended).
#
# The exporter listens on the node's private address only. /metrics reads the local Redis;
# /scrape?target=redis://127.0.0.1:<sentinel port> reads the local Sentinel. Both log in as the
# ACL user `metrics` (INFO and the like, no key, no CONFIG: see METRICS_RULES in
# components/render.ts). Its password sits in a file that only root and the exporter's user
# read, keyed by those two addresses: a /scrape of any other target (someone who reaches the
# port and names a server of theirs) gets no password at all.
#
# stdin: "metrics <password>". Environment: SELF_IP, METRICS_PORT, REDIS_PORT, SENTINEL_PORT.
# Prints one JSON line.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=metrics-exporter
unit=prometheus-redis-exporter
defaults=/etc/default/prometheus-redis-exporter
passwords=/etc/redis-ha-exporter/passwords.json

# The exporter's answer to GET <path>, through bash's /dev/tcp (no curl needed on the server).
http_get() (
    exec 3<>"/dev/tcp/$SELF_IP/$METRICS_PORT"
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$SELF_IP" >&3
    timeout 5 cat <&3
)

# Waits up to 10 s until the exporter sees Redis and Sentinel up (redis_up 1 on both paths).
wait_scrapes() {
    local i
    for ((i = 0; i < 50; i++)); do
        if http_get /metrics 2>/dev/null | grep -q '^redis_up 1' &&
            http_get "/scrape?target=redis://127.0.0.1:$SENTINEL_PORT" 2>/dev/null | grep -q '^redis_up 1'; then
            return 0
        fi
        sleep 0.2
    done
    fatal "the exporter on $SELF_IP:$METRICS_PORT does not see Redis and Sentinel up after 10 s: journalctl -u $unit"
}

main() {
    local changed password
    require_root
    command -v prometheus-redis-exporter >/dev/null || fatal "prometheus-redis-exporter is not installed"
    id prometheus >/dev/null 2>&1 || fatal "the exporter's user prometheus is missing: reinstall prometheus-redis-exporter"
    read_secrets
    password=$(conf_quote "$(secret metrics)") # a JSON string too: printable ASCII, \ and " escaped
    save_original "$defaults"
    install -d -m 0750 -o root -g prometheus "$(dirname "$passwords")"
    # The exporter looks a password up by the target's URI with its user (--redis.user) put in.
    changed=$(printf '{"redis://metrics@127.0.0.1:%s":%s,"redis://metrics@127.0.0.1:%s":%s}\n' "$REDIS_PORT" "$password" "$SENTINEL_PORT" "$password" |
        install_if_changed "$passwords" root:prometheus 0640)
    changed+=$(install_if_changed "$defaults" root:root 0644 <<CONF
# Managed by redis-ha (Pulumi): the exporter on this node's private address, reading the local
# Redis (/metrics) and Sentinel (/scrape) as the ACL user metrics (assets/metrics-exporter.sh).
ARGS="--web.listen-address=$SELF_IP:$METRICS_PORT --redis.addr=redis://127.0.0.1:$REDIS_PORT --redis.user=metrics --redis.password-file=$passwords --config-command=- --include-system-metrics=false"
CONF
    )
    enable_unit "$unit"
    if [ -n "$changed" ] || ! systemctl is-active -q "$unit"; then
        systemctl restart "$unit"
        info "exporter (re)started on $SELF_IP:$METRICS_PORT"
    fi
    wait_scrapes
    printf '{"listen":"%s:%s","restarted":%s}\n' "$SELF_IP" "$METRICS_PORT" "$([ -n "$changed" ] && echo true || echo false)"
}

main "$@"
