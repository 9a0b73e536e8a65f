#!/usr/bin/env bash
# Installs what the project needs on this machine, skipping what is already there: Debian
# packages for the lab and the tests, the Pulumi toolchain (scripts/toolchain.sh) and the npm
# dependencies (install scripts off: none is needed, and some would try to download).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

packages=(systemd-container debootstrap apt-cacher-ng iputils-arping openssh-client iproute2 shellcheck redis-tools)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "[deps] apt-get install ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # apt-cacher-ng's own service is not used: the lab starts its own instance on the bridge.
    if command -v service >/dev/null; then service apt-cacher-ng stop >/dev/null 2>&1 || true; fi
fi

# shellcheck source=scripts/env.sh
. scripts/env.sh
stamp=node_modules/.redis-ha-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    echo "[deps] npm ci" >&2
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
fi
