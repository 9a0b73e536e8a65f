#!/usr/bin/env bash
# Forgets the kernel settings for the next boot. The values in force stay until then: setting
# them back could hurt whatever else runs on the host.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=kernel
require_root
rm -f /etc/sysctl.d/60-redis-ha.conf /etc/tmpfiles.d/redis-ha-thp.conf
info "kernel settings will be the host's defaults after the next boot"
