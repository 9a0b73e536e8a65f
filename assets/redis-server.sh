#!/usr/bin/env bash
# Installs redis-server when it is missing and points it at our managed include file, which
# sets the bind address, the port and the password. Redis is restarted only when that file or
# the include line changed. Reads the password from stdin (never from arguments).
# Environment: REDIS_BIND_IP, REDIS_PORT. Prints one JSON line describing what it did.
set -euo pipefail

conf=/etc/redis/redis.conf
managed=/etc/redis/redis-ha.conf

info() { printf '[redis-server] %s\n' "$*" >&2; }
fatal() { printf '[redis-server] error: %s\n' "$*" >&2; exit 1; }

verify_system() {
    [ "$(id -u)" -eq 0 ] || fatal "must run as root"
    command -v apt-get >/dev/null || fatal "needs a Debian-based server (apt-get)"
    [[ ${REDIS_BIND_IP:-} =~ ^[0-9.]+$ ]] || fatal "REDIS_BIND_IP is not an IPv4 address: '${REDIS_BIND_IP:-}'"
    [[ ${REDIS_PORT:-} =~ ^[0-9]+$ ]] || fatal "REDIS_PORT is not a port: '${REDIS_PORT:-}'"
    ip -o addr show | grep -q " inet $REDIS_BIND_IP/" || fatal "this server has no address $REDIS_BIND_IP (privateIp)"
}

# What this run did, for the JSON report. Functions set these instead of returning a status, so
# that `set -e` stays in force inside them.
installed_now=false
changed=false
tmp="" # the new managed file while it is written; removed whatever happens
trap '[ -z "$tmp" ] || rm -f "$tmp"' EXIT

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_packages() {
    installed redis-server && return 0
    info "installing redis-server"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    installed_now=true
}

write_managed() {
    local password
    IFS= read -r password || true
    [ -n "$password" ] || fatal "no password on stdin"
    tmp=$(mktemp /etc/redis/.redis-ha.XXXXXX) # 0600 from mktemp: the secret is never world-readable
    {
        echo "# Managed by redis-ha (Pulumi). Local changes are overwritten."
        echo "bind $REDIS_BIND_IP 127.0.0.1 -::1"
        echo "port $REDIS_PORT"
        echo "protected-mode yes"
        printf 'requirepass "%s"\n' "${password//\"/\\\"}"
    } >"$tmp"
    cmp -s "$tmp" "$managed" && return 0
    install -o redis -g redis -m 0640 "$tmp" "$managed"
    changed=true
}

include_managed() {
    grep -qxF "include $managed" "$conf" && return 0
    printf '\n# Added by redis-ha: settings managed by Pulumi.\ninclude %s\n' "$managed" >>"$conf"
    changed=true
}

main() {
    verify_system
    install_packages
    write_managed
    include_managed
    if [ "$changed" = true ]; then
        info "configuration changed: restarting redis-server"
        systemctl restart redis-server
    else
        info "no change detected: redis-server left running"
    fi
    systemctl is-active --quiet redis-server || fatal "redis-server is not running: journalctl -u redis-server"
    printf '{"installed":%s,"restarted":%s,"version":"%s"}\n' "$installed_now" "$changed" \
        "$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
}

main "$@"
