#!/usr/bin/env bash
# Takes the exporter's configuration off a node (metrics turned off, or destroy): stops and
# disables it, puts Debian's defaults back and removes the password file. Its package goes with
# its own step (packages-remove.sh). Runs after lib/common.sh (prepended).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=metrics-exporter

main() {
    require_root
    systemctl disable -q --now prometheus-redis-exporter 2>/dev/null || true
    restore_original /etc/default/prometheus-redis-exporter || true
    rm -rf /etc/redis-ha-exporter
}

main "$@"
