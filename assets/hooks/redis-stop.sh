#!/usr/bin/env bash
# ExecStop of redis-server (the drop-in redis-node.sh installs; runs as root before systemd's
# SIGTERM). Runs after lib/common.sh (prepended when redis-node.sh installs it).
#
# A master with replicas shuts down as Redis does on SIGTERM: no write acknowledged that the
# replicas do not have, the data saved. Redis 7.0 holds writes (a client pause) and waits for
# the replicas' next once-a-second report: while clients are paused it does not ask them for
# one (lab: writes held 0.9 s per stop). Here writes are refused instead (NOREPLICAS, by
# raising min-replicas-to-write for the seconds this process has left), which lets WAIT ask the
# replicas at once; WAIT on a write made after that proves that every replica has every write
# acknowledged before it, and SHUTDOWN NOW skips only Redis's wait (it still saves). Whenever
# anything is not as expected, it stops there and SIGTERM takes Redis's own way.
#
# Logs in as `hooks`, whose password only this host knows (hooks_password in lib/common.sh).
# Environment (the drop-in): REDIS_PORT, SERVER, TLS_DIR (with TLS).
set -uo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=redis-stop-hook

hcli() { REDISCLI_AUTH=$(hooks_password) timeout 5 "$SERVER_CLI" "${TLS_ARGS[@]}" --no-auth-warning --user hooks -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# Writes are taken again, should the shutdown not happen here.
restore() { hcli CONFIG SET min-replicas-to-write "$1" >/dev/null; }

main() {
    local role replicas acked original
    # Not running (a crash: systemd runs ExecStop then too), or a replica: nothing to hand over.
    role=$(hcli ROLE 2>/dev/null | head -1)
    [ "$role" = master ] || exit 0
    replicas=$(hcli INFO replication | sed -n 's/^connected_slaves:\([0-9]*\).*/\1/p')
    [ "${replicas:-0}" -gt 0 ] || exit 0
    original=$(hcli CONFIG GET min-replicas-to-write | tail -1)
    [[ $original =~ ^[0-9]+$ ]] || exit 0
    # From here every write is refused; the PUBLISH (not a write, but replicated) marks the
    # stream's end, and WAIT, on the same connection, waits until the replicas have it.
    acked=$(printf 'CONFIG SET min-replicas-to-write 1000000\nPUBLISH redis-ha:hooks stop\nWAIT %d 2000\n' "$replicas" | hcli | tail -1)
    if ! [[ $acked =~ ^[0-9]+$ ]] || [ "$acked" -lt "$replicas" ]; then
        restore "$original"
        warn "${acked:-no answer}: not every replica has everything yet; leaving the shutdown to Redis (SIGTERM), which waits for them"
        exit 0
    fi
    info "$acked of $replicas replicas have every write; shutting down without waiting for their next report"
    hcli SHUTDOWN NOW >/dev/null 2>&1
    if [ "$(hcli ROLE 2>/dev/null | head -1)" = master ]; then
        restore "$original"
        warn "SHUTDOWN NOW failed (see $SERVER_LOGS/$SERVER-server.log); leaving the shutdown to Redis (SIGTERM)"
    fi
}

main "$@"
