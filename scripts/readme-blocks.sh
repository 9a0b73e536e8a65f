#!/usr/bin/env bash
# Runs, verbatim and in order, each ```sh block of README.md that follows a line
# `<!-- <marker> -->`, each in a fresh bash with -euo pipefail: what the README tells a user to
# type is what CI types. Fails on the first block that fails, or when no block carries the marker.
#   scripts/readme-blocks.sh <marker>
set -euo pipefail
marker=${1:?usage: readme-blocks.sh <marker>}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

blocks=$(mktemp -d)
trap 'rm -rf "$blocks"' EXIT
awk -v m="<!-- $marker -->" -v dir="$blocks" '
    $0 == m { armed = 1; next }
    armed && /^```sh$/ { n++; file = sprintf("%s/%02d.sh", dir, n); inblock = 1; armed = 0; next }
    inblock && /^```$/ { inblock = 0; close(file); next }
    inblock { print > file }
' README.md
shopt -s nullglob
files=("$blocks"/*.sh)
[ ${#files[@]} -gt 0 ] || { echo "readme-blocks: no block of README.md is marked <!-- $marker -->" >&2; exit 1; }
for f in "${files[@]}"; do
    echo "== README block $(basename "$f" .sh) ($marker):"
    sed 's/^/   $ /' "$f"
    bash -euo pipefail "$f"
done
