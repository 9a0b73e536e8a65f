#!/usr/bin/env bash
# Sets up one proxy node: HAProxy on the write and read VIPs, and the VIPs themselves, either
# floating between several proxy nodes (keepalived, unicast VRRP) or, with a single proxy node,
# as secondary addresses that a oneshot unit adds at every boot. Idempotent: each file is
# rewritten only when it changed, HAProxy then reloads (established connections stay) and
# keepalived reloads. Runs after lib/common.sh (prepended).
#
# stdin: the complete haproxy.cfg (it holds passwords).
# Environment: SELF_IP, VIPS ("write-ip read-ip"), PROXY_PORT, KEEPALIVED_CONF (empty with one
#   proxy node, `@IFACE@` standing for the interface). GUARD_LUA, set in front of this script
#   (components/assets.ts embeds it): assets/haproxy-guard.lua, which haproxy.cfg loads.
# Prints one JSON line.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag='vip-proxy'
haproxy_cfg=/etc/haproxy/haproxy.cfg
guard_lua=/etc/haproxy/redis-ha-guard.lua # components/proxy-config.ts: GUARD_LUA_PATH
keepalived_cfg=/etc/keepalived/keepalived.conf
vip_unit=/etc/systemd/system/redis-ha-vips.service
sysctl_file=/etc/sysctl.d/61-redis-ha-proxy.conf
haproxy_state=unchanged
vip_mode=keepalived

# HAProxy binds the VIPs even on a node that does not hold them (yet).
allow_nonlocal_bind() {
    printf '# Managed by redis-ha (Pulumi): HAProxy binds VIPs this node may not hold.\nnet.ipv4.ip_nonlocal_bind = 1\n' |
        install_if_changed "$sysctl_file" root:root 0644 >/dev/null
    sysctl -q -w net.ipv4.ip_nonlocal_bind=1 >/dev/null
}

# The new workers start from the servers' last known states (see server-state-file).
save_server_state() {
    [ -S /run/haproxy/admin.sock ] || return 0
    local new=/var/lib/haproxy/server-state.new
    if echo "show servers state" | socat stdio unix-connect:/run/haproxy/admin.sock >"$new" 2>/dev/null; then
        mv -f "$new" /var/lib/haproxy/server-state
    else
        rm -f "$new"
    fi
}

# The Lua guard that haproxy.cfg loads (not secret). Prints "changed" when it wrote a new
# version; the one before stays as .prev until the configuration using the new one is valid.
install_guard() {
    if [ -f "$guard_lua" ] && ! printf '%s' "${GUARD_LUA:?}" | cmp -s - "$guard_lua"; then
        cp -p "$guard_lua" "$guard_lua.prev"
    fi
    printf '%s' "${GUARD_LUA:?}" | install_if_changed "$guard_lua" root:haproxy 0644
}

# Usage: write_haproxy <"changed" when the guard changed: HAProxy must load it, even with the
# same haproxy.cfg>, haproxy.cfg on stdin.
write_haproxy() {
    local guard_changed=$1 tmp out
    tmp=$(stage_file "$haproxy_cfg")
    if [ -z "$guard_changed" ] && cmp -s "$tmp" "$haproxy_cfg" && systemctl is-active -q haproxy; then
        rm -f "$tmp"
        return 0
    fi
    if ! out=$(haproxy -c -q -f "$tmp" 2>&1); then
        rm -f "$tmp"
        if [ -n "$guard_changed" ]; then # the new guard goes back out too
            if [ -f "$guard_lua.prev" ]; then mv -f "$guard_lua.prev" "$guard_lua"; else rm -f "$guard_lua"; fi
        fi
        fatal "the new haproxy.cfg is not valid, HAProxy keeps the old one: $out"
    fi
    rm -f "$guard_lua.prev"
    save_original "$haproxy_cfg"
    commit_file "$tmp" "$haproxy_cfg" root:haproxy 0640
    enable_unit haproxy
    if systemctl is-active -q haproxy; then
        save_server_state
        systemctl reload haproxy # new workers; the old ones finish their connections
        haproxy_state=reloaded
    else
        systemctl start haproxy
        haproxy_state=started
    fi
}

# A reload that HAProxy refuses at runtime (after `haproxy -c` passed) still "succeeds" for
# systemd, with the old configuration left running: check that the VIPs are really served.
verify_listening() {
    local vip i
    for vip in $VIPS; do
        for ((i = 0; i < 50; i++)); do
            ss -Hltn "sport = :$PROXY_PORT" | grep -q " $vip:$PROXY_PORT " && continue 2
            sleep 0.1
        done
        fatal "HAProxy does not listen on $vip:$PROXY_PORT after loading the new configuration: $(journalctl -u haproxy -n 5 --no-pager -o cat | tr '\n' ' ')"
    done
}

floating_vips() { # keepalived moves the VIPs; no static ones
    local iface=$1
    remove_unit "$vip_unit"
    save_original "$keepalived_cfg"
    if printf '%s\n' "${KEEPALIVED_CONF//@IFACE@/$iface}" | install_if_changed "$keepalived_cfg" root:root 0644 | grep -q changed ||
        ! systemctl is-active -q keepalived; then
        enable_unit keepalived
        systemctl restart keepalived
        info "keepalived (re)started"
    fi
}

static_vips() { # one proxy node: the VIPs are plain secondary addresses, added at every boot
    local iface=$1 vip cmds=""
    vip_mode=static
    if systemctl is-enabled -q keepalived 2>/dev/null && [ -f "$(original_of "$keepalived_cfg")" ]; then
        systemctl disable -q --now keepalived || true
    fi
    for vip in $VIPS; do cmds+="ip addr replace $vip/32 dev $iface; arping -q -U -c 1 -I $iface $vip || true; "; done
    install_if_changed "$vip_unit" root:root 0644 >/dev/null <<UNIT
# Managed by redis-ha (Pulumi): the Redis VIPs on this node.
[Unit]
Description=Redis write and read VIPs ($VIPS)
After=network-online.target
Wants=network-online.target
Before=haproxy.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c '$cmds'

[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    enable_unit redis-ha-vips.service
    systemctl restart redis-ha-vips.service
}

main() {
    local iface vip held="" guard_changed
    : "${PROXY_PORT:?}"
    require_root
    command -v haproxy >/dev/null || fatal "haproxy is not installed"
    iface=$(interface_of "${SELF_IP:?}")
    [ -n "$iface" ] || fatal "no interface holds $SELF_IP (privateIp)"
    allow_nonlocal_bind
    if [ -n "${KEEPALIVED_CONF:-}" ]; then floating_vips "$iface"; else static_vips "$iface"; fi
    guard_changed=$(install_guard)
    write_haproxy "$guard_changed"
    verify_listening
    for vip in ${VIPS:?}; do ip -o -4 addr show dev "$iface" | grep -q " $vip/" && held+="${held:+,}\"$vip\""; done
    printf '{"interface":"%s","vipMode":"%s","haproxy":"%s","holds":[%s]}\n' "$iface" "$vip_mode" "$haproxy_state" "$held"
}

main "$@"
