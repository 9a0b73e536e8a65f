#!/usr/bin/env bash
# Stops Redis and Sentinel on a node that leaves the cluster, before the remaining sentinels
# forget it (SENTINEL RESET): a sentinel or replica still running would be found again at once.
# Its files are taken off later, when Pulumi deletes the node's resources (redis-node-remove.sh,
# sentinel-node-remove.sh, …). Data in /var/lib/redis stays. Runs after lib/common.sh
# (prepended). Environment: RUNTIME, SERVER.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=node-retire

main() {
    require_root
    # Sentinel first: it must not see its own Redis go down and start a failover.
    service_stop sentinel
    service_stop redis
    info "$(unit_of sentinel) and $(unit_of redis) stopped: this node has left the cluster"
    echo '{"stopped":true}'
}

main "$@"
