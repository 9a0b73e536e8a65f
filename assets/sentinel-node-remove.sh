#!/usr/bin/env bash
# Takes redis-ha's Sentinel off a node: stops redis-sentinel and puts Debian's original
# sentinel.conf back. Runs after lib/common.sh (prepended).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=sentinel-node
state=/var/lib/redis-ha

main() {
    require_root
    if systemctl list-unit-files -q redis-sentinel.service >/dev/null 2>&1; then
        systemctl stop redis-sentinel || true
        systemctl disable -q redis-sentinel || true
    fi
    if [ -f "$state/sentinel.conf.orig" ]; then
        cp -p "$state/sentinel.conf.orig" /etc/redis/sentinel.conf
        rm -f "$state/sentinel.conf.orig"
    fi
    rm -f "$state/sentinel.initialized"
}

main "$@"
