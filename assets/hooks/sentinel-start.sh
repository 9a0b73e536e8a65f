#!/usr/bin/env bash
# ExecStartPost of redis-sentinel (the drop-in sentinel-node.sh installs; runs as root), and run
# by sentinel-node.sh itself after each change. Runs after lib/common.sh (prepended then).
#
# Sets how often this sentinel pings Redis and the other sentinels: every PING_PERIOD_MS, a tenth
# of the down-after period but at most once a second (Redis's own pace, so the 30 s default
# changes nothing). A server that stops answering is then seen down between 1 and 1.1 down-after
# periods after it did, not up to 2 (Sentinel counts from the first unanswered ping). Sentinel
# has no configuration directive for it, only the runtime SENTINEL DEBUG, which a restart
# forgets: hence a hook at every start.
#
# Logs in as `hooks`, whose password only this host knows (hooks_password in lib/common.sh).
# Environment (the drop-in): SENTINEL_PORT, PING_PERIOD_MS, SERVER.
set -uo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=sentinel-start-hook

main() {
    local i out=""
    for ((i = 0; i < 50; i++)); do
        out=$(REDISCLI_AUTH=$(hooks_password) timeout 3 "$SERVER_CLI" --no-auth-warning --user hooks -h 127.0.0.1 -p "$SENTINEL_PORT" \
            SENTINEL DEBUG ping-period "$PING_PERIOD_MS" 2>&1)
        [ "$out" != OK ] || { info "pings every $PING_PERIOD_MS ms"; exit 0; }
        sleep 0.1
    done
    warn "SENTINEL DEBUG ping-period $PING_PERIOD_MS: ${out:-no answer}; Sentinel keeps its own pace (1 s)"
    exit 1
}

main "$@"
