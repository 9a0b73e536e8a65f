#!/usr/bin/env bash
# Removes the packages that packages.sh installed (not those that were there before). Uses
# `apt-get remove`, not purge: Redis's data in /var/lib/redis stays. Environment: PACKAGE_SET.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=packages
list=/var/lib/redis-ha/installed-packages.${PACKAGE_SET:?}
held=/var/lib/redis-ha/held-packages.$PACKAGE_SET

main() {
    local pkgs
    require_root
    # A version pin held them (packages.sh): let go, or apt would refuse to remove them.
    if [ -f "$held" ]; then
        mapfile -t pkgs <"$held"
        apt-mark unhold "${pkgs[@]}" >/dev/null
        rm -f "$held"
    fi
    [ -f "$list" ] || { info "installed nothing: nothing to remove"; return 0; }
    mapfile -t pkgs < <(sort -u "$list")
    if [ ${#pkgs[@]} -gt 0 ]; then
        info "removing ${pkgs[*]} (data in /var/lib/redis is kept)"
        DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq -o DPkg::Lock::Timeout=120 "${pkgs[@]}" >/dev/null
    fi
    rm -f "$list"
    rmdir /var/lib/redis-ha 2>/dev/null || true
}

main "$@"
