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
# Pulumi's CLI (3.259) writes every RPC of every run, secret values included (encrypted with the
# stack's secrets provider), to $PULUMI_HOME/logs, up to 500 MB: 8 MB and 0.4-0.9 s per no-op
# `pulumi up` of the lab stack. It has no switch; it goes on without the log when it cannot make
# that directory, so a file stands in its place. Only in the Pulumi home made here, never an
# operator's own; REDIS_HA_PULUMI_AUTOLOG=1 brings the log back. `-v` logging is untouched.
if [ "$PULUMI_HOME" = "$REDIS_HA_CACHE/pulumi-home" ]; then
    if [ "${REDIS_HA_PULUMI_AUTOLOG:-0}" = 1 ]; then
        [ ! -f "$PULUMI_HOME/logs" ] || rm -f "$PULUMI_HOME/logs"
    elif [ ! -f "$PULUMI_HOME/logs" ]; then
        rm -rf "${PULUMI_HOME:?}/logs" && : >"$PULUMI_HOME/logs"
    fi
fi
