# shellcheck shell=bash
# Sourced by the project's scripts: puts the toolchain first on PATH and points Pulumi at a
# local file backend and a plugin cache outside the work tree. Nothing here needs the internet.
# An operator's own PULUMI_BACKEND_URL / PULUMI_CONFIG_PASSPHRASE(_FILE) are left alone.
redis_ha_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REDIS_HA_CACHE=${REDIS_HA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-ha}
eval "$(bash "$redis_ha_root/scripts/toolchain.sh" | grep -E '^(PULUMI|NODE)_BIN=')"
export PATH="$NODE_BIN:$PULUMI_BIN:$PATH"
export PULUMI_HOME=${PULUMI_HOME:-$REDIS_HA_CACHE/pulumi-home}
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$REDIS_HA_CACHE/state}
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_IGNORE_AMBIENT_PLUGINS=true
# V8's compiled code kept on disk for every Node process (Node 22.1+): each `pulumi up` starts
# one for the program, which loads TypeScript's compiler before any line of ours runs, and one
# for the dynamic providers; 0.25 s less per no-op here. (toolchain/program-start.js turns it
# on for the rest of the program also where this file is not sourced.)
export NODE_COMPILE_CACHE=${NODE_COMPILE_CACHE:-$REDIS_HA_CACHE/node-compile-cache}
# Passphrase secrets: the operator's own passphrase when set, else one generated for the lab
# and kept beside it, outside the work tree.
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
    export PULUMI_CONFIG_PASSPHRASE_FILE="$REDIS_HA_CACHE/lab/passphrase"
    if [ ! -s "$PULUMI_CONFIG_PASSPHRASE_FILE" ]; then
        mkdir -p "$(dirname "$PULUMI_CONFIG_PASSPHRASE_FILE")"
        (umask 077 && head -c 24 /dev/urandom | base64 >"$PULUMI_CONFIG_PASSPHRASE_FILE")
    fi
fi
mkdir -p "$PULUMI_HOME" "${PULUMI_BACKEND_URL#file://}" 2>/dev/null || true
