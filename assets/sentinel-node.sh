#!/usr/bin/env bash
# Configures redis-sentinel on one node. Runs after lib/common.sh (prepended).
#
# First run (STEP=create, or no marker yet): writes /etc/redis/sentinel.conf, monitoring the
# master a majority of the running sentinels name, or else the master the Redis nodes follow
# (the master election made them a group before any sentinel starts), with Sentinel's own ACL
# users (its `default` user off). A create ignores a marker left by a deployment whose removal
# never ran: the sentinel there may remember a master with stale data.
# From then on Sentinel owns that file (it records the master, replicas and other sentinels
# there), and this script never rewrites it: later runs apply users (ACL SETUSER), the
# sentinels' own login to each other (SENTINEL CONFIG SET), timings, quorum and auth (SENTINEL
# SET) at runtime, then make Sentinel save them (SENTINEL FLUSHCONFIG). A sentinel set up
# before it had ACL users (password on its default user) is migrated the same way.
#
# stdin: "name password" lines: admin (Sentinel's administrator: the deployer), sentinel (the
#   Redis ACL user Sentinel logs in as, and the sentinels' user among themselves), discovery
#   (clients asking where the master is); previous-<name>: a password being retired, accepted
#   next to the new one.
# Variables set in the script: STEP (create or update), START_HOOK (assets/hooks/sentinel-start.sh).
# Environment: SENTINEL_PORT, SENTINEL_LISTEN ("key value" lines: its port, or with TLS its TLS
#   settings; a change restarts the sentinel, as does a renewed certificate: see apply_listen),
#   TLS_CERT_UNTIL (with TLS: the end of the node's certificate, so that a renewal runs this
#   step), PING_PERIOD_MS (see the hook), REDIS_PORT, SELF_IP, NODE_IPS, SENTINEL_PEERS,
#   MASTER_NAME, SENTINEL_SETTINGS ("key value" lines as SENTINEL SET takes them: quorum,
#   down-after-milliseconds, …), SENTINEL_ACL_RULES ("user rules" lines),
#   SENTINEL_DEFAULT_USER ("off", or "discovery": on,
#   with the discovery user's rights and password, for clients that send no user name),
#   RUNTIME (as in redis-node.sh), TLS_DIR (with TLS: its files, which redis-node.sh installs).
# Prints one JSON line.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=sentinel-node
conf=$SERVER_ETC/sentinel.conf
state=/var/lib/redis-ha
restarted=false
initialized=false
migrated=false
scli_user="admin"

# Talks to the local sentinel as admin, or, before a migration, as its password-only default user.
scli() {
    if [ "$scli_user" = admin ]; then
        admin_cli "$SENTINEL_PORT" "$@"
    else
        REDISCLI_AUTH=$(secret discovery) server_cli --no-auth-warning -h 127.0.0.1 -p "$SENTINEL_PORT" "$@"
    fi
}

# The rest of the line that starts with "<key> " in <lines>. Usage: value_of <key> "<lines>"
value_of() { sed -n "s/^$1 //p" <<<"$2"; }

# `user` lines for sentinel.conf, passwords as SHA-256 hashes (two while one rotates).
render_users() {
    local name rules
    if [ "$SENTINEL_DEFAULT_USER" = discovery ]; then
        echo "user default on $(password_rules discovery) $(value_of discovery "$SENTINEL_ACL_RULES")"
    else
        echo "user default off"
    fi
    while read -r name rules; do
        [ -n "$name" ] && echo "user $name on $(password_rules "$name") $rules"
    done <<<"$SENTINEL_ACL_RULES"
    [ "${RUNTIME:-packages}" != packages ] || echo "user hooks on #$(hooks_hash) $HOOKS_RULES"
}

# The start hook's user: SENTINEL DEBUG (its ping and INFO periods) and nothing else.
HOOKS_RULES="-@all +sentinel|debug"
hooks_hash() { printf '%s' "$(hooks_password)" | sha256sum | cut -d' ' -f1; }

# systemd runs START_HOOK (assets/hooks/sentinel-start.sh) each time redis-sentinel starts; it
# runs here too, so that a new ping period applies at once.
start_hook() {
    [ "${RUNTIME:-packages}" = packages ] || return 0
    install_hook "$(unit_of sentinel)" sentinel-start "$START_HOOK" "# Managed by redis-ha: the sentinel's ping and INFO periods, at every start (assets/hooks/sentinel-start.sh).
[Service]
Environment=SENTINEL_PORT=$SENTINEL_PORT PING_PERIOD_MS=$PING_PERIOD_MS SERVER=$SERVER${TLS_DIR:+ TLS_DIR=$TLS_DIR}
ExecStartPost=-+/bin/bash /usr/local/lib/redis-ha/sentinel-start"
    SENTINEL_PORT=$SENTINEL_PORT PING_PERIOD_MS=$PING_PERIOD_MS SERVER=$SERVER TLS_DIR=${TLS_DIR:-} bash /usr/local/lib/redis-ha/sentinel-start
}

render_conf() { # render_conf <master ip> <master port>
    local quorum key value
    quorum=$(value_of quorum "$SENTINEL_SETTINGS")
    [ -n "$quorum" ] || fatal "SENTINEL_SETTINGS has no quorum"
    echo "# Written once by redis-ha at creation. Sentinel owns this file now; redis-ha changes"
    echo "# settings at runtime (ACL SETUSER, SENTINEL SET) and never rewrites it."
    printf '%s\n' "$SENTINEL_LISTEN"
    echo "bind $SELF_IP 127.0.0.1"
    echo "protected-mode no"
    echo "daemonize no"
    echo "supervised systemd"
    echo "pidfile /run/sentinel/$SERVER-sentinel.pid"
    echo "logfile $SERVER_LOGS/$SERVER-sentinel.log"
    echo "dir $SERVER_DATA"
    render_users
    echo "sentinel sentinel-user sentinel"
    echo "sentinel sentinel-pass $(conf_quote "$(secret sentinel)")"
    echo "sentinel announce-ip $SELF_IP"
    echo "sentinel resolve-hostnames no"
    echo "sentinel announce-hostnames no"
    echo "sentinel deny-scripts-reconfig yes"
    echo "sentinel monitor $MASTER_NAME $1 $2 $quorum"
    echo "sentinel auth-user $MASTER_NAME sentinel"
    echo "sentinel auth-pass $MASTER_NAME $(conf_quote "$(secret sentinel)")"
    while read -r key value; do # the other settings, as SENTINEL SET names them
        case $key in "" | quorum) continue ;; esac
        echo "sentinel $key $MASTER_NAME $value"
    done <<<"$SENTINEL_SETTINGS"
}

# The node the other Redis nodes replicate from, as "ip port", asking each node's ROLE as admin;
# fails when they do not form one group. Usage: master_by_roles
master_by_roles() {
    local ip role masters=() followed=()
    for ip in $NODE_IPS; do
        role=$(REDISCLI_AUTH=$(secret admin) timeout 3 "$SERVER_CLI" "${TLS_ARGS[@]}" --no-auth-warning --user admin -h "$ip" -p "$REDIS_PORT" ROLE 2>/dev/null | head -2 | tr '\n' ' ') || continue
        case $role in
        "master "*) masters+=("$ip") ;;
        "slave "*) followed+=("$(cut -d' ' -f2 <<<"$role")") ;;
        esac
    done
    if [ ${#followed[@]} -gt 0 ]; then
        [ "$(printf '%s\n' "${followed[@]}" | sort -u | wc -l)" -eq 1 ] || fatal "the Redis nodes follow different masters (${followed[*]}): run pulumi up again once the master election has run"
        echo "${followed[0]} $REDIS_PORT"
    elif [ ${#masters[@]} -eq 1 ]; then
        echo "${masters[0]} $REDIS_PORT"
    else
        fatal "no sentinel majority answers and the Redis nodes do not form one group (masters: ${masters[*]:-none}): run pulumi up again"
    fi
}

initialize() {
    local master
    save_original "$conf"
    master=$(discover_master "$MASTER_NAME" "$SENTINEL_PEERS" "$NODE_IPS")
    [ -n "$master" ] || master=$(master_by_roles)
    info "monitoring $MASTER_NAME at $master"
    # shellcheck disable=SC2086 # "ip port" splits into two arguments on purpose
    render_conf $master | install_if_changed "$conf" >/dev/null
    if service_restart sentinel; then
        restarted=true
        wait_pong sentinel scli
    fi
    touch "$state/sentinel.initialized"
    rm -f "$state/sentinel.generation" # started with everything current (see rolling-restart.sh)
    initialized=true
}

# Waits until the local sentinel answers, as admin or (not migrated yet) as its default user.
# shellcheck disable=SC2034 # admin_secret is read by admin_password in lib/common.sh
connect_sentinel() {
    local i
    for ((i = 0; i < 100; i++)); do
        scli_user="admin"
        [ "$(scli PING 2>/dev/null)" != PONG ] || return 0
        if has_secret previous-admin; then # the admin password rotates: this sentinel may know only the old one
            admin_secret="previous-admin"
            [ "$(scli PING 2>/dev/null)" != PONG ] || return 0
            admin_secret="admin"
        fi
        scli_user=default
        if [ "$(scli PING 2>/dev/null)" = PONG ]; then
            info "Sentinel has no ACL users yet: adding them (its default user loses its rights)"
            migrated=true
            return 0
        fi
        sleep 0.1
    done
    fatal "$(unit_of sentinel) does not answer, or takes neither the admin nor the old password: journalctl -u $(unit_of sentinel), $SERVER_LOGS/"
}

expect_ok() { # expect_ok <what> <output>
    [ "$2" = OK ] || fatal "$1: $2"
}

# ACL SETUSER <name> reset on <password rules> <rules>, as one command that redis-cli reads on
# stdin: the hashes never show on a command line, and the user never has fewer passwords than
# it should, not even for a moment. Usage: set_user <name> <whose passwords> <rules>
set_user() {
    expect_ok "ACL SETUSER $1" "$(printf 'ACL SETUSER %s reset on %s %s\n' "$1" "$(password_rules "$2")" "$3" | scli)"
}

apply_users() {
    local name rules
    # admin first: once it exists, the rest goes through it.
    while read -r name rules; do
        [ -n "$name" ] || continue
        set_user "$name" "$name" "$rules"
        [ "$name" != admin ] || scli_user="admin"
    done <<<"$SENTINEL_ACL_RULES"
    # The exporter's user goes when metrics are turned off (redis-node.sh's ACL file drops it on Redis).
    [ -n "$(value_of metrics "$SENTINEL_ACL_RULES")" ] || scli ACL DELUSER metrics >/dev/null
    if [ "${RUNTIME:-packages}" = packages ]; then
        expect_ok "ACL SETUSER hooks" "$(printf 'ACL SETUSER hooks reset on #%s %s\n' "$(hooks_hash)" "$HOOKS_RULES" | scli)"
    fi
    if [ "$SENTINEL_DEFAULT_USER" = discovery ]; then
        set_user default discovery "$(value_of discovery "$SENTINEL_ACL_RULES")"
    else
        expect_ok "ACL SETUSER default" "$(scli ACL SETUSER default reset off)"
    fi
}

# Sentinel logs in to a peer once per connection and never retries: a link made while the peer
# did not take our password yet stays refused, the peer counted down, until the link drops. The
# sentinels are updated in parallel, and a rotation or an upgrade gives each its new password in
# this same run; so before switching (which drops and remakes the links), wait until every peer
# that answers takes the password. A peer that does not answer is down or not deployed yet.
wait_peers_take_password() {
    local peer answer pending i
    for ((i = 0; i < 300; i++)); do
        pending=()
        for peer in $SENTINEL_PEERS; do
            [ "${peer%:*}" != "$SELF_IP" ] || continue
            answer=$(REDISCLI_AUTH=$(secret sentinel) timeout 2 "$SERVER_CLI" "${TLS_ARGS[@]}" --no-auth-warning --user sentinel \
                -h "${peer%:*}" -p "${peer##*:}" PING 2>&1) || true
            [[ $answer != *WRONGPASS* && $answer != *NOAUTH* ]] || pending+=("$peer")
        done
        [ ${#pending[@]} -gt 0 ] || return 0
        [ $((i % 25)) -ne 24 ] || info "waiting for ${pending[*]} to take the sentinels' password ($(((i + 1) / 5)) s)"
        sleep 0.2
    done
    fatal "the sentinels ${pending[*]} still refuse the sentinels' password (sentinelAuthPassword) after 60 s: their update failed or has not run (see its error in this run); fix that, then pulumi up again"
}

# How Sentinel listens (SENTINEL_LISTEN) is the one thing it cannot change at runtime (it has no
# CONFIG SET), and it reads its TLS files only at start. So when a line differs from
# sentinel.conf (tls.authClients turned on or off), or the node's certificate is newer than the
# running sentinel (renewed by redis-node.sh in this run), the sentinel stops, those lines are
# replaced while it is down (it rewrites its own file while it runs), and it starts again, in
# about a second. Redis is untouched; as the sentinels' steps run side by side, no failover can
# start meanwhile.
apply_listen() {
    local key value stale="" started
    while read -r key value; do
        [ -n "$key" ] || continue
        # Sentinel writes values back quoted ("…") when it saves the file.
        [ "$(sed -n "s/^$key //p" "$conf" | tr -d '"')" = "$value" ] || stale="$key differs"
    done <<<"$SENTINEL_LISTEN"
    if [ -z "$stale" ] && systemctl is-active -q "$(unit_of sentinel)"; then
        started=$(date -d "$(systemctl show -p ActiveEnterTimestamp --value "$(unit_of sentinel)")" +%s)
        [ "$(stat -c %Y "$TLS_DIR/node.crt")" -lt "$started" ] || stale="the node's certificate is newer than the running sentinel"
    fi
    [ -n "$stale" ] || return 0
    info "restarting the sentinel to listen as configured ($stale)"
    systemctl stop "$(unit_of sentinel)"
    sed -i -E '/^(port|tls-[a-z-]+) /d' "$conf"
    printf '%s\n' "$SENTINEL_LISTEN" >>"$conf"
    systemctl start "$(unit_of sentinel)"
    restarted=true
}

apply_runtime() {
    local key value settings=()
    while read -r key value; do
        [ -n "$key" ] || continue
        settings+=("$key" "$value")
    done <<<"$SENTINEL_SETTINGS"
    service_ensure_running sentinel
    [ -z "${TLS_DIR:-}" ] || apply_listen # in clear, how it listens cannot change (its port is fixed)
    connect_sentinel
    apply_users
    wait_peers_take_password
    expect_ok "SENTINEL CONFIG SET sentinel-user" "$(scli SENTINEL CONFIG SET sentinel-user sentinel)"
    # -x: a password is the last argument, read from stdin, never on the command line.
    expect_ok "SENTINEL CONFIG SET sentinel-pass" "$(secret sentinel | scli -x SENTINEL CONFIG SET sentinel-pass)"
    expect_ok "SENTINEL SET $MASTER_NAME …" "$(secret sentinel | scli -x SENTINEL SET "$MASTER_NAME" "${settings[@]}" auth-user sentinel auth-pass)"
    expect_ok "SENTINEL FLUSHCONFIG" "$(scli SENTINEL FLUSHCONFIG)"
    info "users, timings, quorum and auth applied at runtime, no restart"
}

main() {
    require_root
    command -v "$SERVER_CLI" >/dev/null || fatal "$SERVER_CLI is not installed (package $SERVER-tools)"
    read_secrets
    if [ "$STEP" = update ] && [ -f "$state/sentinel.initialized" ]; then apply_runtime; else initialize; fi
    start_hook
    printf '{"initialized":%s,"restarted":%s,"migrated":%s,"master":"%s"}\n' "$initialized" "$restarted" "$migrated" \
        "$(scli SENTINEL get-master-addr-by-name "$MASTER_NAME" 2>/dev/null | tr '\n' ' ' | sed 's/ $//; s/ /:/')"
}

main "$@"
