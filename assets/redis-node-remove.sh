#!/usr/bin/env bash
# Takes redis-ha's configuration off a node: stops redis-server, puts Debian's original
# redis.conf back, removes the ACL file and the stop hook. Data in /var/lib/redis stays unless
# PURGE_DATA=yes.
# Runs after lib/common.sh (prepended).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=redis-node
state=/var/lib/redis-ha

main() {
    require_root
    restore_service redis /etc/redis/redis.conf
    remove_hook redis-server redis-stop
    rm -f /etc/redis/users.acl "$state/redis.initialized" "$state/redis.generation" "$state/rolling-restart.lock"
    if [ "${PURGE_DATA:-no}" = yes ]; then
        info "purging Redis data in /var/lib/redis"
        find /var/lib/redis -mindepth 1 -delete 2>/dev/null || true
    else
        info "Redis data in /var/lib/redis is kept"
    fi
}

main "$@"
