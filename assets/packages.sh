#!/usr/bin/env bash
# Installs the packages in PACKAGES, only those that are missing (no `apt-get update` when
# nothing is). Remembers what it installed, so that removal takes away only that.
# Environment: PACKAGES (space-separated), PACKAGE_SET (a name for this set, so that sets
# installed by different resources are removed separately), HOLD_UNITS (services that must not
# start on install), PACKAGE_VERSION (optional: the version to install, then held with
# `apt-mark hold`; a server that already has the packages moves to it in the rolling restart,
# assets/rolling-restart.sh),
# ALSO_SETS (optional: other steps' packages as "set=pkg,pkg set=pkg", installed in the same apt
# run and recorded under each step's set, so that a host needs one apt run). Prints one JSON line.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=packages
state=/var/lib/redis-ha

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

# Debian starts a service as soon as its package is installed, with Debian's configuration
# (redis-sentinel: every address, no password). The units in HOLD_UNITS whose package is about
# to be installed are masked meanwhile (--runtime: a reboot half-way forgets the mask) and so
# stay disabled; the scripts that write our configuration enable and start them.
# All in one call: each call reloads systemd (0.1-0.25 s here).
masked=()
hold_units() {
    local unit
    for unit in ${HOLD_UNITS:-}; do
        [[ " $* " == *" $unit "* ]] && masked+=("$unit.service")
    done
    [ ${#masked[@]} -eq 0 ] || systemctl mask --runtime -q "${masked[@]}" 2>/dev/null
}
release_units() {
    [ ${#masked[@]} -eq 0 ] || systemctl unmask --runtime -q "${masked[@]}" 2>/dev/null || true
}

# A pinned version is held, so that `apt upgrade` or unattended-upgrades leave it and only a new
# pin moves it (the rolling restart, node by node). Without a pin, what we held is let go.
# Prints true when PACKAGES are held.
hold_pin() {
    local list=$state/held-packages.$PACKAGE_SET pkgs
    read -ra pkgs <<<"$PACKAGES"
    if [ -n "${PACKAGE_VERSION:-}" ]; then
        apt-mark hold "${pkgs[@]}" >/dev/null
        install -d -m 0755 "$state"
        printf '%s\n' "${pkgs[@]}" >"$list"
        echo true
        return 0
    fi
    if [ -f "$list" ]; then
        mapfile -t pkgs <"$list"
        apt-mark unhold "${pkgs[@]}" >/dev/null
        rm -f "$list"
        info "no version pin any more: ${pkgs[*]} no longer held"
    fi
    echo false
}

main() {
    local missing=() also=() p json="" pinned entry list
    local -A set_of=() # an ALSO_SETS package's set
    require_root
    command -v apt-get >/dev/null || fatal "needs a Debian-based server (apt-get)"
    for p in ${PACKAGES:?}; do installed "$p" || missing+=("$p"); done
    for entry in ${ALSO_SETS:-}; do
        list=${entry#*=}
        for p in ${list//,/ }; do installed "$p" || { also+=("$p") && set_of[$p]=${entry%%=*}; }; done
    done
    if [ $((${#missing[@]} + ${#also[@]})) -gt 0 ]; then
        info "installing ${missing[*]} ${also[*]}"
        apt_update
        hold_units "${missing[@]}" "${also[@]}"
        trap release_units EXIT
        # The version pin is for PACKAGES only.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 --no-install-recommends \
            "${missing[@]/%/${PACKAGE_VERSION:+=$PACKAGE_VERSION}}" "${also[@]}" >/dev/null
        install -d -m 0755 "$state"
        [ ${#missing[@]} -eq 0 ] || printf '%s\n' "${missing[@]}" >>"$state/installed-packages.${PACKAGE_SET:?}"
        for p in "${also[@]}"; do echo "$p" >>"$state/installed-packages.${set_of[$p]}"; done
    else
        info "all packages present: nothing to install"
    fi
    pinned=$(hold_pin)
    for p in ${PACKAGES}; do json+="${json:+,}\"$p\":\"$(version "$p")\""; done
    printf '{"installedNow":%d,"versions":{%s},"held":%s}\n' "${#missing[@]}" "$json" "$pinned"
}

main "$@"
