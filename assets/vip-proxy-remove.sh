#!/usr/bin/env bash
# Takes the VIP proxy off a node: stops keepalived (the VIPs go with it) or removes the static
# VIPs, puts Debian's original haproxy.cfg and keepalived.conf back, removes the Lua guard and
# stops HAProxy.
# Environment: VIPS. Runs after lib/common.sh (prepended).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag='vip-proxy'
state=/var/lib/redis-ha

main() {
    local vip dev unit
    require_root
    if [ -f /etc/systemd/system/redis-ha-vips.service ]; then
        systemctl disable -q --now redis-ha-vips.service || true
        rm -f /etc/systemd/system/redis-ha-vips.service
        systemctl daemon-reload
    fi
    for unit in keepalived haproxy; do
        if systemctl list-unit-files -q "$unit.service" >/dev/null 2>&1; then systemctl disable -q --now "$unit" || true; fi
    done
    for vip in ${VIPS:-}; do
        dev=$(ip -o -4 addr show | awk -v ip="$vip" '{ split($4, a, "/"); if (a[1] == ip) print $2 }')
        [ -z "$dev" ] || ip addr del "$vip/32" dev "$dev" || true
    done
    [ ! -f "$state/haproxy.cfg.orig" ] || mv -f "$state/haproxy.cfg.orig" /etc/haproxy/haproxy.cfg
    rm -f /etc/haproxy/redis-ha-guard.lua /etc/haproxy/redis-ha-guard.lua.prev
    if [ -f "$state/keepalived.conf.orig" ]; then mv -f "$state/keepalived.conf.orig" /etc/keepalived/keepalived.conf; else rm -f /etc/keepalived/keepalived.conf; fi
    rm -f /etc/sysctl.d/61-redis-ha-proxy.conf
    info "VIP proxy removed"
}

main "$@"
