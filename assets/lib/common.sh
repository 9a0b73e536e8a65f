# Helpers shared by the scripts in assets/. RemoteCommand sends this file in front of the
# script that uses it (components/assets.ts), so each run is one self-contained script.
# shellcheck shell=bash

log_tag=${log_tag:-redis-ha}
info() { printf '[%s] %s\n' "$log_tag" "$*" >&2; }
warn() { printf '[%s] warning: %s\n' "$log_tag" "$*" >&2; }
fatal() { printf '[%s] error: %s\n' "$log_tag" "$*" >&2; exit 1; }

# Which server runs (SERVER): redis, or valkey, its fork, which speaks the same protocol and
# reads the same configuration. Debian names everything of Valkey's as Redis's with the one word
# changed: packages (valkey-server, valkey-sentinel, valkey-tools), units, valkey-cli (which also
# takes REDISCLI_AUTH), /etc/valkey/valkey.conf, /var/lib/valkey, /var/log/valkey, user valkey.
# The names below follow from SERVER (upper case like it: the scripts take them as given).
SERVER=${SERVER:-redis}
case $SERVER in redis | valkey) ;; *) fatal "SERVER is '$SERVER': redis or valkey" ;; esac
SERVER_CLI=$SERVER-cli SERVER_LOGS=/var/log/$SERVER SERVER_OWNER=$SERVER:$SERVER
# shellcheck disable=SC2034 # used by the scripts this file is prepended to
SERVER_ETC=/etc/$SERVER SERVER_DATA=/var/lib/$SERVER

require_root() { [ "$(id -u)" -eq 0 ] || fatal "must run as root (or through sudo)"; }

# Reads "name secret" lines from stdin into the associative array `secrets`.
declare -A secrets=()
read_secrets() {
    local name value
    while IFS=' ' read -r name value; do
        [ -n "$name" ] && secrets[$name]=$value
    done
}
secret() { [ -n "${secrets[$1]:-}" ] || fatal "no '$1' secret on stdin"; printf '%s' "${secrets[$1]}"; }

# The SHA-256 of a secret, as ACL rules take it (#<hex>): no clear text in files or commands.
secret_hash() { secret "$1" | sha256sum | cut -d' ' -f1; }

# Whether stdin brought the secret <name>.
has_secret() { [ -n "${secrets[$1]:-}" ]; }

# The password rules of user <name> as ACL rules take them: "#<hash>" of its secret, and while its
# password rotates (a `previous-<name>` secret on stdin) also "#<hash>" of the old one: both work.
password_rules() {
    printf '#%s' "$(secret_hash "$1")"
    if has_secret "previous-$1"; then printf ' #%s' "$(secret_hash "previous-$1")"; fi
}

# Which secret logs in as admin: `admin`, or while the admin password rotates, `previous-admin`
# on a server that has not taken the new one yet. wait_pong switches it until one works.
admin_secret="admin"
admin_password() { secret "$admin_secret"; }

# What the CLI ($SERVER_CLI) needs to speak as this cluster does: with TLS (TLS_DIR set: where
# the node's TLS files are, see install_tls in redis-node.sh), trust only the cluster's CA and
# present the node's certificate, which servers with tls-auth-clients ask for. An array, so that
# `timeout` can run the CLI with it (timeout cannot run a shell function).
TLS_ARGS=()
[ -z "${TLS_DIR:-}" ] || TLS_ARGS=(--tls --cacert "$TLS_DIR/ca.crt" --cert "$TLS_DIR/node.crt" --key "$TLS_DIR/node.key")
server_cli() { "$SERVER_CLI" "${TLS_ARGS[@]}" "$@"; }

# The CLI ($SERVER_CLI) to the local Redis or Sentinel on <port>, as admin (the password on its environment,
# never on its command line). Usage: admin_cli <port> <command…>
admin_cli() {
    local port=$1
    shift
    REDISCLI_AUTH=$(admin_password) server_cli --no-auth-warning --user admin -h 127.0.0.1 -p "$port" "$@"
}

# A value in double quotes as redis.conf and sentinel.conf read it: any printable password,
# with its backslashes and double quotes escaped.
conf_quote() { local v=$1; v=${v//\\/\\\\}; v=${v//\"/\\\"}; printf '"%s"' "$v"; }

# Writes stdin to a new temporary file next to <file> and prints its name. The file is created
# 0600, so secrets never sit in a world-readable file, not even for a moment.
# Usage: staged=$(stage_file <file>)
stage_file() {
    local tmp
    tmp=$(mktemp "$(dirname "$1")/.redis-ha.XXXXXX")
    cat >"$tmp"
    echo "$tmp"
}

# Moves a staged file into place, with its owner and mode. Usage: commit_file <staged> <file> <owner> <mode>
commit_file() { chown "$3" "$1" && chmod "$4" "$1" && mv -f "$1" "$2"; }

# Writes stdin to <file> only when the content differs, with <owner> (default the server's user, e.g. redis:redis) and
# <mode> (default 0640). Prints "changed" when it wrote.
install_if_changed() {
    local file=$1 owner=${2:-$SERVER_OWNER} mode=${3:-0640} tmp
    tmp=$(stage_file "$file")
    if cmp -s "$tmp" "$file"; then
        rm -f "$tmp"
        return 0
    fi
    commit_file "$tmp" "$file" "$owner" "$mode"
    echo changed
}

# The network interface that holds the IPv4 address <ip>, or nothing. Usage: interface_of <ip>
interface_of() { ip -o -4 addr show | awk -v ip="$1" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }'; }

# Stops, disables and removes a systemd unit we installed, when its file is there.
# Usage: remove_unit <unit file>
remove_unit() {
    [ -f "$1" ] || return 0
    systemctl disable -q --now "$(basename "$1")" || true
    rm -f "$1"
    systemctl daemon-reload
}

# The master a majority of the sentinels name, as "ip port", or nothing when no majority does.
# Asks as Sentinel's `discovery` user (password: the `discovery` secret). Only addresses of our
# own nodes count: a stray answer (Debian's default sentinel monitors 127.0.0.1) is ignored, and
# so is a lone sentinel left over from a deployment whose removal never ran, which may name a
# master with stale data.
# Usage: discover_master <name> "<ip:port …>" "<node ips>"
discover_master() {
    local name=$1 peers=$2 ips=$3 pass peer answer ip port votes=() best count needed passes=(discovery)
    # While Sentinel's password rotates, a sentinel not updated yet knows only the previous one.
    ! has_secret previous-discovery || passes+=(previous-discovery)
    needed=$(($(wc -w <<<"$peers") / 2 + 1))
    for peer in $peers; do
        answer=""
        for pass in "${passes[@]}"; do
            answer=$(REDISCLI_AUTH=$(secret "$pass") timeout 3 "$SERVER_CLI" "${TLS_ARGS[@]}" --no-auth-warning --user discovery -h "${peer%:*}" -p "${peer##*:}" \
                SENTINEL get-master-addr-by-name "$name" 2>/dev/null | tr '\n' ' ') && [[ $answer != *WRONGPASS* && $answer != *NOAUTH* ]] && break
            answer=""
        done
        [ -n "$answer" ] || continue
        read -r ip port <<<"$answer"
        [[ " $ips " == *" $ip "* && $port =~ ^[0-9]+$ ]] && votes+=("$ip $port")
    done
    [ ${#votes[@]} -gt 0 ] || return 0
    read -r count best < <(printf '%s\n' "${votes[@]}" | sort | uniq -c | sort -rn | head -1)
    if [ "$count" -lt "$needed" ]; then
        info "$count of $(wc -w <<<"$peers") sentinels name $best as master: not a majority, ignored"
        return 0
    fi
    info "$count of $(wc -w <<<"$peers") sentinels name $best as master"
    echo "$best"
}

# Waits up to 10 s until <cli function> PING answers PONG. Usage: wait_pong <unit> <cli function>
wait_pong() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$("$2" PING 2>/dev/null)" = PONG ] && return 0
        if has_secret previous-admin; then # the admin password rotates: try the other one
            if [ "$admin_secret" = admin ]; then admin_secret="previous-admin"; else admin_secret="admin"; fi
        fi
        sleep 0.1
    done
    fatal "$1 does not answer: journalctl -u $1 or docker logs, and $SERVER_LOGS/"
}

# Stops <service> (redis or sentinel; a container is Pulumi's to remove) and puts back the
# config file as it was before we first wrote it, or removes ours if there was none.
# Usage: restore_service <service> <config file>
restore_service() {
    [ "${RUNTIME:-packages}" != packages ] || service_stop "$1"
    restore_original "$2" || rm -f "$2"
}

# Stops <service> (redis or sentinel; the service, whichever SERVER runs it) and keeps it from starting again at boot, or, as a
# container, from being restarted by Docker. Nothing to do when it is not there.
service_stop() {
    local unit
    if [ "${RUNTIME:-packages}" = docker ]; then
        docker inspect "redis-ha-$1" >/dev/null 2>&1 || return 0
        docker update --restart=no "redis-ha-$1" >/dev/null || true
        docker stop "redis-ha-$1" >/dev/null || true
        return 0
    fi
    unit=$(unit_of "$1")
    systemctl list-unit-files -q "$unit.service" >/dev/null 2>&1 || return 0
    systemctl stop "$unit" || true
    systemctl disable -q "$unit" || true
}

# How Redis and Sentinel run (RUNTIME): "packages", Debian's systemd units; "docker", containers
# named redis-ha-redis and redis-ha-sentinel that Pulumi creates once their configuration exists.
unit_of() { case $1 in redis) echo "$SERVER-server" ;; sentinel) echo "$SERVER-sentinel" ;; esac; }

# Enables <unit> at boot unless it is already: the unit's own link only. `systemctl enable` of a
# unit that also has a SysV script (Debian's redis, haproxy, keepalived) would also run update-rc.d,
# whose links systemd ignores when a unit file exists, and reload systemd, which a new link does
# not need (whoever changes a unit file reloads): 0.35 s per call here, 0.01 s without both.
# Usage: enable_unit <unit>
enable_unit() {
    [ "$(systemctl is-enabled "$1" 2>/dev/null)" = enabled ] || SYSTEMCTL_SKIP_SYSV=1 systemctl enable --no-reload -q "$1"
}

# Restarts a service so it reads its new configuration. Fails (status 1) when there is nothing
# to restart yet: a container that Pulumi has not created.
service_restart() {
    if [ "${RUNTIME:-packages}" = docker ]; then
        docker inspect "redis-ha-$1" >/dev/null 2>&1 || return 1
        docker restart "redis-ha-$1" >/dev/null
    else
        enable_unit "$(unit_of "$1")"
        systemctl restart "$(unit_of "$1")"
    fi
}

# Starts a service that should run but does not (an operator stopped it). Fails when the
# container does not exist.
service_ensure_running() {
    if [ "${RUNTIME:-packages}" = docker ]; then
        [ "$(docker inspect -f '{{.State.Running}}' "redis-ha-$1" 2>/dev/null)" = true ] && return 0
        docker start "redis-ha-$1" >/dev/null 2>&1 || fatal "container redis-ha-$1 is missing: run pulumi up again"
        info "redis-ha-$1 was stopped: started it"
    elif ! systemctl is-active -q "$(unit_of "$1")"; then
        info "$(unit_of "$1") was stopped: starting it"
        systemctl start "$(unit_of "$1")"
    fi
}

# An index update that cannot hang a deployment: each try is bounded (a stalled mirror or
# proxy otherwise keeps `pulumi up` waiting for ever), three tries, then a clear failure with
# apt's own words (a missing key, a suite the repository does not have).
apt_update() {
    local try out
    for try in 1 2 3; do
        out=$(timeout 180 apt-get update -qq -o Acquire::http::Timeout=30 2>&1) && return 0
        warn "apt-get update failed or took over 180 s (try $try of 3): $(grep -E '^(E|W): ' <<<"$out" | head -3 | tr '\n' ' ')"
    done
    fatal "apt-get update keeps failing: check this server's apt sources and proxy: $(grep -E '^(E|W): ' <<<"$out" | head -3 | tr '\n' ' ')"
}

# The password of the `hooks` user that our systemd hooks (assets/hooks/) log in as. Made on the
# host at first use and kept root-only; it never leaves the host, and Redis holds only its hash,
# so it opens this host's Redis only, for the few commands the hooks need.
hooks_secret=/etc/redis-ha/hooks.secret
hooks_password() {
    if [ ! -s "$hooks_secret" ]; then
        install -d -m 0700 "$(dirname "$hooks_secret")"
        (umask 077 && head -c 24 /dev/urandom | base64 >"$hooks_secret.new" && mv -f "$hooks_secret.new" "$hooks_secret")
    fi
    cat "$hooks_secret"
}

# Installs one of our systemd hooks: <script> as /usr/local/lib/redis-ha/<name>, run by the
# drop-in <drop-in> of <unit>; systemd reloads when either changed. Packages runtime only.
# Usage: install_hook <unit> <name> <script> <drop-in>
install_hook() {
    local changed
    install -d -m 0755 /usr/local/lib/redis-ha "/etc/systemd/system/$1.service.d"
    changed=$(printf '%s' "$3" | install_if_changed "/usr/local/lib/redis-ha/$2" root:root 0755)
    changed+=$(printf '%s\n' "$4" | install_if_changed "/etc/systemd/system/$1.service.d/redis-ha-$2.conf" root:root 0644)
    [ -z "$changed" ] || systemctl daemon-reload
}

# Takes a hook off (see install_hook); with the last one goes the hooks' password.
# Usage: remove_hook <unit> <name>
remove_hook() {
    [ -f "/usr/local/lib/redis-ha/$2" ] || [ -f "/etc/systemd/system/$1.service.d/redis-ha-$2.conf" ] || return 0
    rm -f "/usr/local/lib/redis-ha/$2" "/etc/systemd/system/$1.service.d/redis-ha-$2.conf"
    rmdir "/etc/systemd/system/$1.service.d" 2>/dev/null || true
    systemctl daemon-reload
    if rmdir /usr/local/lib/redis-ha 2>/dev/null; then rm -rf "$(dirname "$hooks_secret")"; fi
}

# Where save_original keeps the copy of <file>.
original_of() { echo "/var/lib/redis-ha/$(basename "$1").orig"; }

# Keeps a copy of a configuration file as it was before we first wrote it (if there was one).
save_original() {
    install -d -m 0755 /var/lib/redis-ha
    [ -f "$(original_of "$1")" ] || [ ! -f "$1" ] || cp -p "$1" "$(original_of "$1")"
}

# Puts back the copy save_original kept of <file>, and forgets it; fails (status 1) when there
# is none. Usage: restore_original <file>
restore_original() {
    [ -f "$(original_of "$1")" ] || return 1
    cp -p "$(original_of "$1")" "$1"
    rm -f "$(original_of "$1")"
}
