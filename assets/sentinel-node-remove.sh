#!/usr/bin/env bash
# Takes redis-ha's Sentinel off a node: stops redis-sentinel, puts Debian's original
# sentinel.conf back and removes the start hook. Runs after lib/common.sh (prepended).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=sentinel-node
state=/var/lib/redis-ha

main() {
    require_root
    restore_service sentinel "$SERVER_ETC/sentinel.conf"
    remove_hook "$(unit_of sentinel)" sentinel-start
    rm -f "$state/sentinel.initialized" "$state/sentinel.generation"
}

main "$@"
