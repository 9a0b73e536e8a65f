#!/bin/sh
# Runs inside a lab host at early boot. A container cannot write the kernel's vm.* sysctls or
# the THP files, so each is replaced by a plain per-host file that starts at the kernel's
# default on every boot (as a real reboot would) and takes writes like the real knob. Redis
# itself still sees the machine's real values; only the deployer's view is emulated.
set -eu
state=/run/lab-knobs
mkdir -p "$state"
emulate() { # emulate <path> <boot value>
    printf '%s\n' "$2" >"$state/$(echo "$1" | tr / _)"
    mount --bind "$state/$(echo "$1" | tr / _)" "$1"
}
emulate /proc/sys/vm/overcommit_memory 0
emulate /proc/sys/vm/swappiness 60
emulate /sys/kernel/mm/transparent_hugepage/enabled 'always [madvise] never'
emulate /sys/kernel/mm/transparent_hugepage/defrag 'always defer defer+madvise [madvise] never'
