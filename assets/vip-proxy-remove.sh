#!/usr/bin/env bash
# Takes the VIP proxy off a node: stops keepalived (the VIPs go with it) or removes the static
# VIPs, puts Debian's original haproxy.cfg and keepalived.conf back, removes the Lua guard and
# stops HAProxy.
# Environment: VIPS. Runs after lib/common.sh (prepended).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag='vip-proxy'

main() {
    local vip dev unit
    require_root
    remove_unit /etc/systemd/system/redis-ha-vips.service
    for unit in keepalived haproxy; do
        if systemctl list-unit-files -q "$unit.service" >/dev/null 2>&1; then systemctl disable -q --now "$unit" || true; fi
    done
    for vip in ${VIPS:-}; do
        dev=$(interface_of "$vip")
        [ -z "$dev" ] || ip addr del "$vip/32" dev "$dev" || true
    done
    restore_original /etc/haproxy/haproxy.cfg || true # none: we never wrote it
    rm -f /etc/haproxy/redis-ha-guard.lua /etc/haproxy/redis-ha-guard.lua.prev
    restore_original /etc/keepalived/keepalived.conf || rm -f /etc/keepalived/keepalived.conf
    rm -f /etc/sysctl.d/61-redis-ha-proxy.conf
    info "VIP proxy removed"
}

main "$@"
