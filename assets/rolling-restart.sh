#!/usr/bin/env bash
# One node's part of a rolling restart (components/rolling-restart.ts decides the order: the
# replicas one at a time, then the master after a planned failover). Runs after lib/common.sh
# (prepended).
#
# A node needs a restart when
#   - a setting Redis reads only at start (RESTART_SETTINGS) differs from what it runs with;
#   - PACKAGE_VERSION is set and a package in PACKAGES has another version (it is installed
#     first, with Debian's automatic restarts held back, so that the restart is ours);
#   - redis-server or redis-sentinel still runs a binary that an upgrade replaced;
#   - the rolling restart generation (GENERATION) differs from the one recorded here. A service
#     with none recorded (created before, or just now with everything current) records it.
# Each is a need of redis-server, of redis-sentinel or of both, and each service restarts only
# for its own. All is read from the node itself, under a lock, so a run that was interrupted and
# is run again restarts only what still needs it, never a service twice.
#
# STEP=check prints what the node needs; STEP=restart does it: packages, settings into
# redis.conf, restart redis-server, wait until it answers (and as a replica, until it is linked
# and synchronised), restart redis-sentinel, wait until it answers. Every restart is logged in
# /var/lib/redis-ha/restarts.log; <service>.generation records the last one's generation.
#
# stdin: admin (Redis's and Sentinel's admin user; previous-admin while it rotates).
# Environment: STEP, REDIS_PORT, SENTINEL_PORT, RESTART_SETTINGS ("key value" lines),
#   PACKAGE_VERSION (or empty), PACKAGES, GENERATION, RUNTIME, SERVER.
# Prints one JSON line: {"needs":[…],"restarted":[…],"runs":{"version":…,"packages":{…}}}, where
# runs is what the node runs once the step is done (the outputs report it).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=rolling-restart
conf=$SERVER_ETC/$SERVER.conf
state=/var/lib/redis-ha
needs=()
redis_needs=()
sentinel_needs=()
restarted=()

rcli() { admin_cli "$REDIS_PORT" "$@"; }
scli() { admin_cli "$SENTINEL_PORT" "$@"; }

version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

# Whether <service>'s running process was started from a binary that has since been replaced.
runs_replaced_binary() {
    local pid
    [ "${RUNTIME:-packages}" = packages ] || return 1
    pid=$(systemctl show -p MainPID --value "$(unit_of "$1")" 2>/dev/null) || return 1
    [ "${pid:-0}" -gt 0 ] && [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == *" (deleted)" ]]
}

# The generation <service> last restarted for; a missing file records the current one (the
# service started with everything current, or before rolling restarts existed).
generation_of() {
    local file=$state/$1.generation
    [ -f "$file" ] || echo "$GENERATION" >"$file"
    cat "$file"
}

# What <service> needs, appended to its list (redis_needs or sentinel_needs) and to `needs`.
need() {
    if [ "$1" = redis ]; then redis_needs+=("$2"); else sentinel_needs+=("$2"); fi
    needs+=("$(unit_of "$1"): $2")
}

check() {
    local key value current p v service
    wait_pong "$(unit_of redis)" rcli
    while read -r key value; do
        [ -n "$key" ] || continue
        current=$(rcli CONFIG GET "$key" | sed -n 2p)
        [ "$current" = "$value" ] || need redis "$key $current → $value"
    done <<<"$RESTART_SETTINGS"
    if [ -n "${PACKAGE_VERSION:-}" ]; then
        for p in $PACKAGES; do
            v=$(version_of "$p")
            [ "$v" = "$PACKAGE_VERSION" ] || { need redis "$p ${v:-missing} → $PACKAGE_VERSION" && need sentinel "$p ${v:-missing} → $PACKAGE_VERSION"; }
        done
    fi
    for service in redis sentinel; do
        ! runs_replaced_binary "$service" || need "$service" "runs a binary an upgrade replaced"
        v=$(generation_of "$service")
        [ "$v" = "$GENERATION" ] || need "$service" "rolling restart $v → $GENERATION"
    done
}

policy=/usr/sbin/policy-rc.d
kept_policy=""
# Puts back the policy-rc.d that was there before install_packages, or removes ours.
restore_policy() {
    rm -f "$policy"
    [ -z "$kept_policy" ] || mv -f "$kept_policy" "$policy"
}

# Installs PACKAGE_VERSION of every package, while a policy-rc.d keeps Debian's maintainer
# scripts from restarting the services (the restarts that follow are ours, one node at a time).
# They are held again afterwards (packages.sh holds a pinned version): only a new pin moves them.
install_packages() {
    local p wanted=()
    for p in $PACKAGES; do wanted+=("$p=$PACKAGE_VERSION"); done
    if [ -e "$policy" ]; then
        kept_policy=$(mktemp "$state/policy-rc.d.XXXXXX")
        cp -p "$policy" "$kept_policy"
    fi
    trap restore_policy EXIT
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    info "installing ${wanted[*]} (services not restarted by apt)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 --no-install-recommends --allow-downgrades --allow-change-held-packages "${wanted[@]}" >/dev/null 2>"$state/apt.err"; then
        timeout 180 apt-get update -qq -o Acquire::http::Timeout=30 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 --no-install-recommends --allow-downgrades --allow-change-held-packages "${wanted[@]}" >/dev/null ||
            fatal "apt-get install ${wanted[*]} failed: is $PACKAGE_VERSION in this server's apt sources? (apt-cache policy $(unit_of redis))"
    fi
    rm -f "$state/apt.err"
    restore_policy
    trap - EXIT
    # Changing a held package lets go of its hold: hold the new version again.
    apt-mark hold "${wanted[@]%%=*}" >/dev/null
}

# Writes RESTART_SETTINGS into redis.conf (replacing the line of each, or adding it).
write_settings() {
    awk -v settings="$RESTART_SETTINGS" '
        BEGIN { n = split(settings, lines, "\n"); for (i = 1; i <= n; i++) if (lines[i] != "") { split(lines[i], kv, " "); want[kv[1]] = lines[i] } }
        ($1 in want) { print want[$1]; done[$1] = 1; next }
        { print }
        END { for (k in want) if (!(k in done)) print want[k] }' "$conf" | install_if_changed "$conf" >/dev/null
}

# As a replica: waits until the link to the master is up and no sync is in progress.
wait_linked() {
    local i info
    for ((i = 0; i < 1200; i++)); do
        info=$(rcli INFO replication 2>/dev/null | tr -d '\r')
        grep -q '^role:master' <<<"$info" && return 0
        if grep -q '^master_link_status:up' <<<"$info" && grep -q '^master_sync_in_progress:0' <<<"$info"; then
            info "linked to its master again after $((i / 10)) s"
            return 0
        fi
        sleep 0.1
    done
    fatal "$(unit_of redis) is not linked to its master 120 s after the restart: INFO replication, $SERVER_LOGS/$SERVER-server.log"
}

# Restarts <service> (redis or sentinel) and records it at once, so that a run interrupted from
# here on does not restart it again. Usage: restart_service <service> <why…>
restart_service() {
    local service=$1
    shift
    service_restart "$service"
    echo "$GENERATION" >"$state/$service.generation"
    echo "$(date -u +%FT%TZ) $service generation=$GENERATION $*" >>"$state/restarts.log"
    restarted+=("$(unit_of "$service")")
}

restart() {
    local p
    if [ ${#redis_needs[@]} -gt 0 ] && [ "$(rcli ROLE | head -1)" = master ]; then
        fatal "this node is the master: hand the role over first (a planned failover)"
    fi
    if [ -n "${PACKAGE_VERSION:-}" ]; then
        for p in $PACKAGES; do
            [ "$(version_of "$p")" = "$PACKAGE_VERSION" ] || { install_packages; break; }
        done
    fi
    if [ ${#redis_needs[@]} -gt 0 ]; then
        write_settings
        restart_service redis "${redis_needs[@]}"
        wait_pong "$(unit_of redis)" rcli
        wait_linked
    fi
    if [ ${#sentinel_needs[@]} -gt 0 ]; then
        restart_service sentinel "${sentinel_needs[@]}"
        wait_pong "$(unit_of sentinel)" scli
    fi
}

# What runs now: the version the server answers with (valkey_version on Valkey, which also reports
# the Redis version it is compatible with) and the installed version of each of PACKAGES.
runs_json() {
    local info version p v installed=()
    info=$(rcli INFO server | tr -d '\r')
    version=$(sed -n "s/^${SERVER}_version://p" <<<"$info")
    for p in $PACKAGES; do
        v=$(version_of "$p")
        [ -z "$v" ] || installed+=("\"$p\":\"$v\"")
    done
    printf '{"version":"%s","packages":{%s}}' "$version" "$(IFS=,; echo "${installed[*]}")"
}

json_list() { local first=1 x; printf '['; for x in "$@"; do [ $first = 1 ] || printf ','; first=0; printf '"%s"' "$x"; done; printf ']'; }

main() {
    require_root
    read_secrets
    # One rolling restart at a time on this node: a run killed on the operator's machine can leave
    # its provider process behind, still at work, while the operator runs again.
    install -d -m 0755 "$state"
    exec 9>"$state/rolling-restart.lock"
    flock -w 600 9 || fatal "another rolling restart holds $state/rolling-restart.lock for over 600 s"
    check
    if [ "$STEP" = restart ] && [ ${#needs[@]} -gt 0 ]; then
        info "restarting: ${needs[*]}"
        restart
    fi
    printf '{"needs":%s,"restarted":%s,"runs":%s}\n' "$(json_list "${needs[@]}")" "$(json_list "${restarted[@]}")" "$(runs_json)"
}

main "$@"
