#!/usr/bin/env bash
# Installs what the project needs on this machine, skipping what is already there: Debian
# packages for the lab and the tests, the Pulumi toolchain (scripts/toolchain.sh) and the npm
# dependencies (install scripts off: none is needed, and some would try to download).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# haproxy, redis-server, openssh-server and lua5.3: unit tests run them on loopback (their
# services are not used and are stopped after the install).
packages=(systemd-container debootstrap apt-cacher-ng iputils-arping openssh-client iproute2 shellcheck redis-tools
    haproxy redis-server openssh-server lua5.3)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "[deps] apt-get install ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Their own services are not used: the lab starts its own apt-cacher-ng on the bridge, and
    # the unit tests start haproxy, redis-server and sshd themselves on loopback ports.
    # Only those installed just now: a service that ran before (an sshd) is the machine's own.
    if command -v service >/dev/null; then
        for p in "${missing[@]}"; do
            case $p in apt-cacher-ng | haproxy | redis-server) service "$p" stop >/dev/null 2>&1 || true ;; openssh-server) service ssh stop >/dev/null 2>&1 || true ;; esac
        done
    fi
fi

# shellcheck source=scripts/env.sh
. scripts/env.sh
stamp=node_modules/.redis-ha-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    echo "[deps] npm ci" >&2
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
fi
