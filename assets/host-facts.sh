#!/usr/bin/env bash
# Reports what a server is, as one JSON line: hostname, kernel, OS release, CPU count, memory.
# Read-only: safe to run any number of times.
set -euo pipefail

json_string() { # a JSON string literal for $1
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "${s//$'\t'/ }"
}

os_release() {
    # shellcheck disable=SC1091 # the file is the server's, not ours
    (. /etc/os-release && printf '%s' "${PRETTY_NAME:-$NAME $VERSION_ID}")
}

printf '{"hostname":%s,"kernel":%s,"os":%s,"cpus":%d,"memoryMiB":%d}\n' \
    "$(json_string "$(hostname)")" \
    "$(json_string "$(uname -r)")" \
    "$(json_string "$(os_release)")" \
    "$(nproc)" \
    "$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))"
