#!/usr/bin/env bash
# ExecStartPost of redis-sentinel (the drop-in sentinel-node.sh installs; runs as root), and run
# by sentinel-node.sh itself after each change. Runs after lib/common.sh (prepended then).
#
# Sets how often this sentinel pings Redis and the other sentinels: every PING_PERIOD_MS, a tenth
# of the down-after period, at least 300 ms and at most once a second (Redis's own pace). A
# server that stops answering is then seen down between 1 and 1.3 down-after periods after it
# did, not up to 2 (Sentinel counts from the first unanswered ping). And how often it reads each
# server's INFO: every second (INFO_PERIOD_MS), as Sentinel itself does once a master is down,
# instead of every 10 s. A failover promotes only a replica whose INFO is fresher than 5 ping
# periods; read every 10 s, the replicas of a master whose host died (their links still up) were
# often too stale at the moment of choice, and the failover waited 2 × failoverTimeout to retry.
# And how often it says hello (PUBLISH_PERIOD_MS): every 0.5 s instead of 2 s. The sentinels
# find each other and learn a new master's epoch from these messages: a new cluster agrees up to
# 1.5 s sooner (README "Speed"). Cost: on 3 nodes, 10 small messages a second per sentinel (one
# to each server and each other sentinel, twice a second). Sentinel has no configuration
# directive for any of these, only the runtime SENTINEL DEBUG, which a restart forgets: hence a
# hook at every start.
#
# Logs in as `hooks`, whose password only this host knows (hooks_password in lib/common.sh).
# Environment (the drop-in): SENTINEL_PORT, PING_PERIOD_MS, SERVER, TLS_DIR (with TLS).
set -uo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=sentinel-start-hook
INFO_PERIOD_MS=1000
PUBLISH_PERIOD_MS=500

main() {
    local i out=""
    for ((i = 0; i < 50; i++)); do
        out=$(REDISCLI_AUTH=$(hooks_password) timeout 3 "$SERVER_CLI" "${TLS_ARGS[@]}" --no-auth-warning --user hooks -h 127.0.0.1 -p "$SENTINEL_PORT" \
            SENTINEL DEBUG ping-period "$PING_PERIOD_MS" info-period "$INFO_PERIOD_MS" publish-period "$PUBLISH_PERIOD_MS" 2>&1)
        [ "$out" != OK ] || { info "pings every $PING_PERIOD_MS ms, reads INFO every $INFO_PERIOD_MS ms, says hello every $PUBLISH_PERIOD_MS ms"; exit 0; }
        sleep 0.1
    done
    warn "SENTINEL DEBUG ping-period $PING_PERIOD_MS info-period $INFO_PERIOD_MS publish-period $PUBLISH_PERIOD_MS: ${out:-no answer}; Sentinel keeps its own pace (pings 1 s, INFO 10 s, hellos 2 s)"
    exit 1
}

main "$@"
