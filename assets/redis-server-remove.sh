#!/usr/bin/env bash
# Undoes assets/redis-server.sh's configuration: drops the include line and the managed file,
# then restarts redis-server on Debian's defaults. The package and the data stay.
set -euo pipefail

conf=/etc/redis/redis.conf
managed=/etc/redis/redis-ha.conf

if [ -f "$conf" ]; then
    sed -i -e '/^# Added by redis-ha: settings managed by Pulumi\.$/d' -e "\|^include $managed\$|d" "$conf"
fi
rm -f "$managed"
if systemctl list-unit-files redis-server.service >/dev/null 2>&1; then
    systemctl try-restart redis-server
fi
echo '{"removed":true}'
