#!/usr/bin/env bash
# The lab: N simulated bare-metal hosts (Debian 12 bookworm or 13 trixie, booted with systemd
# by systemd-nspawn) on a private bridge, with sshd, static addresses and apt through a local
# caching proxy. Nothing routes off the machine: no forwarding, no NAT, no default route.
#
#   lab.sh up | down | status | ssh <host> [cmd…] | key | hosts | generation
#   lab.sh poweroff <host> [--hard] | start <host> | cut <host> | restore <host>
#
# Settings (environment): LAB_HOSTS (3), LAB_SUITE (bookworm or trixie, for every host; default
# bookworm), LAB_SUITE_<host> (one host's, e.g. LAB_SUITE_rha2=trixie), LAB_SUBNET (10.211.99 =
# a /24 used only on the bridge), REDIS_HA_CACHE (base images, key, apt cache and host disks
# live below it). A host that starts with another suite than its disk has gets a new disk: its
# operating system is reinstalled.
set -euo pipefail

LAB_HOSTS=${LAB_HOSTS:-3}
LAB_SUBNET=${LAB_SUBNET:-10.211.99}
cache=${REDIS_HA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-ha}
dir="$cache/lab"
key="$dir/id_ed25519"
run="/run/redis-ha-lab" # runtime state: gone after a reboot of the machine, like the lab
bridge=rha-br0
gw="$LAB_SUBNET.1"
acng_port=3142
here=$(cd "$(dirname "$0")" && pwd)

info() { printf '[lab] %s\n' "$*" >&2; }
fatal() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }

host_names() { local i; for ((i = 1; i <= LAB_HOSTS; i++)); do echo "rha$i"; done; }
host_ip() { echo "$LAB_SUBNET.$((10 + ${1#rha}))"; }
check_host() {
    if ! [[ $1 =~ ^rha[0-9]+$ ]] || [ "${1#rha}" -lt 1 ] || [ "${1#rha}" -gt "$LAB_HOSTS" ]; then
        fatal "unknown host '$1' (hosts: $(host_names | tr '\n' ' '))"
    fi
}
suite_of() { # the Debian suite of <host>
    local own="LAB_SUITE_$1" suite
    suite=${!own:-${LAB_SUITE:-bookworm}}
    case "$suite" in bookworm | trixie) echo "$suite" ;; *) fatal "LAB_SUITE${!own:+_$1} is '$suite': the lab boots bookworm or trixie" ;; esac
}
base_of() { echo "$dir/base-$1"; } # the base image of a suite
runner_pid() { cat "$run/$1.pid" 2>/dev/null || true; }
is_running() { local pid; pid=$(runner_pid "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
ssh_opts=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=2)
lab_ssh() { local h=$1; shift; ssh "${ssh_opts[@]}" -i "$key" "root@$(host_ip "$h")" "$@"; }

require_tools() {
    local missing=() t
    for t in systemd-nspawn debootstrap apt-cacher-ng ssh ssh-keygen ip; do command -v "$t" >/dev/null || missing+=("$t"); done
    [ ${#missing[@]} -eq 0 ] || fatal "missing ${missing[*]}: apt-get install systemd-container debootstrap apt-cacher-ng openssh-client iproute2"
    [ "$(id -u)" -eq 0 ] || fatal "the lab needs root (network bridge, mounts, nspawn)"
}

# The Debian archive URIs the machine's own apt uses (…/debian, …/debian-security): the lab
# reaches nothing else. Other repositories configured on the machine are not for the hosts.
host_archive() { # host_archive debian|debian-security
    grep -rhoE '^(URIs:|deb( \[[^]]*\])?) +[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
        awk '{print $NF}' | sed 's:/*$::' | grep -E "/$1\$" | head -1 || true
}

build_base() { # build_base <suite>
    local suite=$1 base tmp start mirror security updates=$1-updates
    base=$(base_of "$suite")
    [ -x "$base/usr/sbin/sshd" ] && return 0
    start=$(date +%s)
    mirror=$(host_archive debian)
    security=$(host_archive debian-security)
    [ -n "$mirror" ] || fatal "no Debian archive (…/debian) in the machine's apt sources"
    info "building the $suite base image once (debootstrap minbase, ~1 min)"
    mkdir -p "$dir" && tmp=$(mktemp -d "$dir/base.XXXXXX")
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,openssh-server,iproute2,procps,sudo,iputils-ping,ca-certificates,gpg,curl \
        "$suite" "$tmp" "$mirror" >"$dir/debootstrap-$suite.log" 2>&1 ||
        fatal "debootstrap $suite failed, see $dir/debootstrap-$suite.log"
    # apt inside a host uses the machine's Debian archive, through the proxy on the bridge.
    rm -f "$tmp/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s\nComponents: main\n' "$mirror" "$suite" "$updates"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        [ -z "$security" ] || printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$security" "$suite"
    } >"$tmp/etc/apt/sources.list.d/debian.sources"
    printf 'Acquire::http::Proxy "http://%s:%s";\nAcquire::Retries "3";\n' "$gw" "$acng_port" \
        >"$tmp/etc/apt/apt.conf.d/01lab-proxy"
    rm -f "$tmp"/etc/ssh/ssh_host_* "$tmp/var/lib/dbus/machine-id"
    : >"$tmp/etc/machine-id"
    install -d -m 0700 "$tmp/root/.ssh"
    install -m 0600 "$key.pub" "$tmp/root/.ssh/authorized_keys"
    printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' \
        >"$tmp/etc/ssh/sshd_config.d/lab.conf"
    install -m 0755 "$here/emulate-knobs.sh" "$tmp/usr/local/sbin/lab-emulate-knobs"
    install -m 0644 "$here/lab-emulate-knobs.service" "$tmp/etc/systemd/system/"
    chroot "$tmp" systemctl enable -q systemd-networkd lab-emulate-knobs.service
    chroot "$tmp" systemctl mask -q apt-daily.timer apt-daily-upgrade.timer fstrim.timer \
        e2scrub_all.timer getty@.service console-getty.service systemd-resolved.service 2>/dev/null || true
    chroot "$tmp" apt-get clean
    mv "$tmp" "$base"
    info "$suite base image built in $(($(date +%s) - start)) s"
}

ensure_key() {
    [ -f "$key" ] && return 0
    mkdir -p "$dir"
    ssh-keygen -q -t ed25519 -N '' -C redis-ha-lab -f "$key"
}

ensure_bridge() {
    if ! ip link show "$bridge" >/dev/null 2>&1; then
        if ip route show | grep -q "^$LAB_SUBNET\.0/24"; then
            fatal "$LAB_SUBNET.0/24 is already routed on this machine; pick another LAB_SUBNET"
        fi
        ip link add "$bridge" type bridge
        ip addr add "$gw/24" dev "$bridge"
    fi
    ip link set "$bridge" up
}

ensure_apt_proxy() {
    local pid conf="$dir/acng"
    pid=$(cat "$run/acng.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && return 0
    mkdir -p "$conf" "$dir/apt-cache" "$run/acng-log"
    # No Remap-* lines: requests go to the mirror each host asks for (the machine's own).
    printf '%s\n' "CacheDir: $dir/apt-cache" "LogDir: $run/acng-log" "Port: $acng_port" \
        "BindAddress: $gw" "ExThreshold: 30" "PassThroughPattern: .*" >"$conf/acng.conf"
    setsid apt-cacher-ng -c "$conf" ForeGround=1 "PidFile=$run/acng.pid.self" \
        "SocketPath=$run/acng.socket" >"$run/acng.out" 2>&1 </dev/null &
    echo $! >"$run/acng.pid"
}

prepare_host() { # the host's disk: an overlay on its suite's base, with its own identity
    local h=$1 ip hd="$dir/hosts/$1" root="$run/$1/root" suite
    ip=$(host_ip "$h")
    suite=$(suite_of "$h")
    if [ -f "$hd/.prepared" ] && [ "$(cat "$hd/.suite" 2>/dev/null || echo bookworm)" != "$suite" ]; then
        info "$h: its disk holds $(cat "$hd/.suite" 2>/dev/null || echo bookworm), $suite asked for: a new disk"
        umount "$root" 2>/dev/null || true
        rm -rf "$hd"
    fi
    build_base "$suite"
    mkdir -p "$hd/upper" "$hd/work" "$root"
    mountpoint -q "$root" || mount -t overlay overlay -o "lowerdir=$(base_of "$suite"),upperdir=$hd/upper,workdir=$hd/work" "$root"
    [ -f "$hd/.prepared" ] && return 0
    echo "$suite" >"$hd/.suite"
    echo "$h" >"$root/etc/hostname"
    tr -d '-' </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
    ssh-keygen -A -f "$root" >/dev/null
    printf '[Match]\nName=host0\n\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\n' "$ip" \
        >"$root/etc/systemd/network/10-host0.network"
    {
        printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$h"
        local o; for o in $(host_names); do printf '%s\t%s\n' "$(host_ip "$o")" "$o"; done
    } >"$root/etc/hosts"
    touch "$hd/.prepared"
}

start_host() {
    local h=$1 root="$run/$1/root"
    is_running "$h" && return 0
    prepare_host "$h"
    # A host end of the link left by an nspawn that was killed (or is still going away) makes the
    # next one fail at once: it belongs to no running host now.
    ip link del "vb-$h" 2>/dev/null || true
    # nspawn exits 133 when the host reboots itself: start it again, like a real machine.
    # shellcheck disable=SC2016 # the inner script takes its values as arguments
    setsid bash -c 'while :; do systemd-nspawn -q -D "$1" --machine="$2" --boot --register=no \
        --keep-unit --console=passive --network-bridge="$3"; [ $? -eq 133 ] || break; done' \
        lab-runner "$root" "$h" "$bridge" >"$run/$h.log" 2>&1 </dev/null &
    echo $! >"$run/$h.pid"
}

wait_ready() { # until sshd answers and systemd has finished booting
    local h=$1 deadline=$((SECONDS + ${2:-60})) state
    while ((SECONDS < deadline)); do
        state=$(lab_ssh "$h" systemctl is-system-running --wait 2>/dev/null || true)
        case "$state" in running | degraded) return 0 ;; esac
        is_running "$h" || fatal "$h stopped while booting, see $run/$h.log"
        sleep 0.3
    done
    fatal "$h ($(host_ip "$h")) did not answer ssh within ${2:-60} s, see $run/$h.log"
}

stop_host() { # stop_host <host> [KILL]: TERM makes nspawn power the host off cleanly
    local h=$1 sig=${2:-TERM} pid nspawn init i
    pid=$(runner_pid "$h")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # The host's init runs in a PID namespace and session of its own: a signal to the runner's
        # process group does not reach it. Killing it takes the whole PID namespace along.
        nspawn=$(pgrep -P "$pid" systemd-nspawn || true)
        init=$([ -z "$nspawn" ] || pgrep -P "$nspawn" || true)
        if [ "$sig" = KILL ]; then
            # Pulling the plug.
            kill -KILL -- "$pid" 2>/dev/null || true # the runner must not start it again
            [ -z "$init" ] || kill -KILL "$init" 2>/dev/null || true
        fi
        kill -TERM -- "-$pid" 2>/dev/null || true
        # Up to 10 s for nspawn to power the host off; the runner itself dies of the TERM at once.
        for ((i = 0; i < 100; i++)); do kill -0 "${nspawn:-$pid}" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        # A host still powering off after 10 s: killing nspawn alone left its init running, orphaned
        # (some never ended), holding inotify instances (128 per user by default; with 17 such
        # orphans, 6 hosts failed to boot).
        if [ -n "$init" ] && [ "$(cat "/proc/$init/comm" 2>/dev/null)" = systemd ]; then
            kill -KILL "$init" 2>/dev/null || true
        fi
    fi
    rm -f "$run/$h.pid"
    umount "$run/$h/root" 2>/dev/null || umount -l "$run/$h/root" 2>/dev/null || true
    rm -rf "/run/systemd/nspawn/propagate/$h"
    ip link del "vb-$h" 2>/dev/null || true
}

cmd_up() {
    local start h
    start=$(date +%s)
    require_tools
    mkdir -p "$run"
    ensure_key
    ensure_bridge
    ensure_apt_proxy
    # A new generation whenever the hosts' disks start from the base image: stacks that were
    # deployed onto an earlier generation describe servers that no longer exist.
    [ -f "$dir/hosts/rha1/.prepared" ] || tr -d '-' </proc/sys/kernel/random/uuid >"$dir/generation"
    for h in $(host_names); do start_host "$h"; done
    for h in $(host_names); do wait_ready "$h"; done
    info "up in $(($(date +%s) - start)) s: $(for h in $(host_names); do printf '%s=%s ' "$h" "$(host_ip "$h")"; done)"
}

cmd_down() {
    local h pid
    # Every host that runs, also those a larger LAB_HOSTS started.
    local all=() d
    mapfile -t all < <(host_names)
    for d in "$run"/rha*/; do [ -d "$d" ] && all+=("$(basename "$d")"); done
    for h in $(printf '%s\n' "${all[@]}" | sort -u); do stop_host "$h" & done
    wait
    pid=$(cat "$run/acng.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -- "-$pid" 2>/dev/null; rm -f "$run/acng.pid"
    ip link del "$bridge" 2>/dev/null || true
    rm -rf "$run" "$dir/hosts" "$dir/generation"
    info "down: hosts powered off, disks discarded, bridge and apt proxy gone"
}

cmd_status() {
    local h state
    for h in $(host_names); do
        if is_running "$h"; then
            state=$(lab_ssh "$h" systemctl is-system-running 2>/dev/null || echo unreachable)
            ip link show "vb-$h" 2>/dev/null | grep -q 'state DOWN' && state="$state (network cut)"
        else
            state="off"
        fi
        printf '%-6s %-15s %-9s %s\n' "$h" "$(host_ip "$h")" "$(cat "$dir/hosts/$h/.suite" 2>/dev/null || suite_of "$h")" "$state"
    done
}

cmd_hosts() { local h; for h in $(host_names); do printf '%s %s\n' "$h" "$(host_ip "$h")"; done; }

main() {
    local verb=${1:-status}
    shift || true
    case "$verb" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    hosts) cmd_hosts ;;
    key) echo "$key" ;;
    generation) cat "$dir/generation" 2>/dev/null || true ;;
    ssh) check_host "${1:-}"; lab_ssh "$@" ;;
    poweroff) check_host "${1:-}"; stop_host "$1" "$([ "${2:-}" = --hard ] && echo KILL || echo TERM)"; info "$1 is off" ;;
    start) check_host "${1:-}"; mkdir -p "$run"; start_host "$1"; wait_ready "$1"; info "$1 is up" ;;
    cut) check_host "${1:-}"; ip link set "vb-$1" down; info "$1's network is cut" ;;
    restore) check_host "${1:-}"; ip link set "vb-$1" up; info "$1's network is restored" ;;
    *) fatal "usage: lab.sh up|down|status|hosts|key|ssh <host> [cmd]|poweroff <host> [--hard]|start <host>|cut <host>|restore <host>" ;;
    esac
}

main "$@"
