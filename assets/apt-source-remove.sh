#!/usr/bin/env bash
# Takes the repository of redis.packageSource off this node (apt-source.sh wrote it), after
# the packages from it were removed. Runs after lib/common.sh (prepended).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=apt-source

main() {
    require_root
    rm -f /etc/apt/keyrings/redis-ha.asc /etc/apt/sources.list.d/redis-ha.sources /etc/apt/preferences.d/redis-ha
}

main "$@"
