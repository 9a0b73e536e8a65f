#!/usr/bin/env bash
# Takes redis-ha's configuration off a node: stops redis-server, puts Debian's original
# redis.conf back, removes the ACL file, the stop hook and the TLS files (Sentinel and HAProxy,
# which read them too, are taken off first). Data in /var/lib/redis (or valkey's) stays unless
# PURGE_DATA=yes. Environment: SERVER, PURGE_DATA, TLS_DIR (with TLS).
# Runs after lib/common.sh (prepended).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=redis-node
state=/var/lib/redis-ha

main() {
    require_root
    restore_service redis "$SERVER_ETC/$SERVER.conf"
    remove_hook "$(unit_of redis)" redis-stop
    [ -z "${TLS_DIR:-}" ] || rm -rf "$TLS_DIR"
    rm -f "$SERVER_ETC/users.acl" "$state/redis.initialized" "$state/redis.generation" "$state/rolling-restart.lock"
    if [ "${PURGE_DATA:-no}" = yes ]; then
        info "purging the data in $SERVER_DATA"
        find "$SERVER_DATA" -mindepth 1 -delete 2>/dev/null || true
    else
        info "the data in $SERVER_DATA is kept"
    fi
}

main "$@"
