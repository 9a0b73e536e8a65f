#!/usr/bin/env bash
# Kernel settings Redis recommends: transparent huge pages off, vm.overcommit_memory=1 (so a
# fork for BGSAVE cannot fail), a listen backlog of at least tcp-backlog, and swappiness only
# when asked. Applied now and persisted for the next boot (sysctl.d, a oneshot unit). A knob the
# host does not let us change is a warning, not a failure. Prints the values in force as JSON.
# Environment: THP (never|madvise|keep), OVERCOMMIT (0|1|2|keep), SOMAXCONN, SWAPPINESS (or empty).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=kernel
sysctl_file=/etc/sysctl.d/60-redis-ha.conf
thp_unit=/etc/systemd/system/redis-ha-thp.service
thp=/sys/kernel/mm/transparent_hugepage
warnings=()

set_sysctl() { # set_sysctl <name> <value>
    local path="/proc/sys/${1//.//}"
    [ "$(cat "$path" 2>/dev/null)" = "$2" ] && return 0
    if ! sysctl -q -w "$1=$2" >/dev/null 2>&1; then
        warnings+=("$1 stays $(cat "$path" 2>/dev/null || echo unknown): this host does not let us set it to $2")
    fi
}

set_thp() { # set_thp <file> <value>
    if ! echo "$2" >"$thp/$1" 2>/dev/null; then
        warnings+=("transparent_hugepage/$1 stays '$(thp_value "$1")': this host does not let us set it to $2")
    fi
}

thp_value() { # the selected word, from the kernel's "always madvise [never]" or a plain word
    local v
    v=$(cat "$thp/$1" 2>/dev/null || echo unknown)
    if [[ $v == *"["*"]"* ]]; then v=${v#*[}; v=${v%%]*}; fi
    echo "$v"
}

persist() {
    local sysctl_conf unit_changed
    sysctl_conf="# Managed by redis-ha (Pulumi).
net.core.somaxconn = $SOMAXCONN"
    [ "$OVERCOMMIT" = keep ] || sysctl_conf+=$'\n'"vm.overcommit_memory = $OVERCOMMIT"
    [ -z "${SWAPPINESS:-}" ] || sysctl_conf+=$'\n'"vm.swappiness = $SWAPPINESS"
    printf '%s\n' "$sysctl_conf" | install_if_changed "$sysctl_file" root:root 0644 >/dev/null
    if [ "$THP" != keep ]; then
        # A unit with a shell redirect, not tmpfiles.d: sysfs wants the whole value written at once.
        unit_changed=$(install_if_changed "$thp_unit" root:root 0644 <<UNIT
# Managed by redis-ha (Pulumi): transparent huge pages for Redis, set at every boot.
[Unit]
Description=Transparent huge pages: $THP (for Redis)
DefaultDependencies=no
After=sysinit.target local-fs.target
Before=basic.target redis-server.service redis-sentinel.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo $THP > $thp/enabled && echo $THP > $thp/defrag'

[Install]
WantedBy=basic.target
UNIT
        )
        [ -z "$unit_changed" ] || systemctl daemon-reload
        enable_unit redis-ha-thp.service ||
            warnings+=("cannot enable redis-ha-thp.service: THP will not be set after a reboot")
    else
        remove_unit "$thp_unit"
    fi
}

main() {
    local w json_warnings=""
    require_root
    set_sysctl net.core.somaxconn "${SOMAXCONN:?}"
    [ "${OVERCOMMIT:?}" = keep ] || set_sysctl vm.overcommit_memory "$OVERCOMMIT"
    [ -z "${SWAPPINESS:-}" ] || set_sysctl vm.swappiness "$SWAPPINESS"
    if [ "${THP:?}" != keep ]; then
        [ "$(thp_value enabled)" = "$THP" ] || set_thp enabled "$THP"
        [ "$(thp_value defrag)" = "$THP" ] || set_thp defrag "$THP"
    fi
    persist
    for w in "${warnings[@]}"; do
        warn "$w"
        json_warnings+="${json_warnings:+,}\"${w//\"/\'}\""
    done
    printf '{"overcommitMemory":"%s","somaxconn":"%s","swappiness":"%s","transparentHugePages":"%s","thpDefrag":"%s","warnings":[%s]}\n' \
        "$(cat /proc/sys/vm/overcommit_memory)" "$(cat /proc/sys/net/core/somaxconn)" \
        "$(cat /proc/sys/vm/swappiness 2>/dev/null || echo unknown)" "$(thp_value enabled)" "$(thp_value defrag)" "$json_warnings"
}

main "$@"
