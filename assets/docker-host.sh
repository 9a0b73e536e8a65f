#!/usr/bin/env bash
# Prepares a host for the docker runtime: the official Redis image runs redis-server and
# redis-sentinel as uid/gid 999, so the host gets a `redis` user with those ids (the scripts
# write configuration as redis:redis) and the directories the containers bind-mount. Checks that
# Docker Engine answers. Runs after lib/common.sh (prepended). Prints one JSON line.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=docker-host
uid=999

main() {
    local have
    require_root
    if getent passwd redis >/dev/null; then
        have=$(id -u redis)
        [ "$have" = "$uid" ] || fatal "user redis has uid $have, but the Redis image runs as $uid: remove Debian's redis packages first (runtime docker does not mix with them)"
    else
        getent group redis >/dev/null || groupadd --system --gid "$uid" redis
        useradd --system --uid "$uid" --gid redis --home-dir /var/lib/redis --shell /usr/sbin/nologin redis
        info "created user redis ($uid)"
    fi
    install -d -o redis -g redis -m 2770 /etc/redis
    install -d -o redis -g redis -m 0750 /var/lib/redis /var/log/redis
    command -v docker >/dev/null || fatal "docker is not installed: set redis-ha:docker.installEngine true or install Docker Engine"
    systemctl enable -q --now docker 2>/dev/null || true
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || fatal "Docker Engine does not answer: systemctl status docker"
    printf '{"uid":%d,"docker":"%s"}\n' "$uid" "$(docker version --format '{{.Server.Version}}')"
}

main "$@"
