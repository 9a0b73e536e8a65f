#!/usr/bin/env bash
# The baseline of `npm run bench`: what a careful operator's own script does to get the same
# cluster onto fresh servers, host after host, one SSH session each: one apt run (Redis,
# Sentinel and, on proxy hosts, HAProxy and keepalived), the kernel settings, redis.conf with an
# ACL user, sentinel.conf, haproxy.cfg and keepalived.conf; then it waits until every sentinel
# sees the others and the replicas, and the write VIP answers. No idempotence, no rollback, no
# checks: a yardstick for speed, not a way to deploy.
# Environment: HOSTS (addresses, the first becomes master), PROXY_HOSTS (addresses), WRITE_VIP,
# SSH_KEY (file), BENCH_PASSWORD (the one password, read here and sent on stdin only).
set -euo pipefail
read -ra hosts <<<"${HOSTS:?}"
proxies=" ${PROXY_HOSTS:-} "
vip=${WRITE_VIP:?}
pw=${BENCH_PASSWORD:?}
master=${hosts[0]}
ssh_opts=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -i "${SSH_KEY:?}")

# Everything one host needs, as one script for its shell.
host_script() { # host_script <address>
    local h=$1 pkgs="redis-server redis-sentinel" replicaof="" peer=""
    [[ $proxies == *" $h "* ]] && pkgs+=" haproxy keepalived"
    [ "$h" = "$master" ] || replicaof="replicaof $master 6379"
    for p in $PROXY_HOSTS; do [ "$p" = "$h" ] || peer=$p; done
    cat <<EOF
set -euo pipefail
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
sysctl -qw vm.overcommit_memory=1 net.core.somaxconn=1024 net.ipv4.ip_nonlocal_bind=1
echo never >/sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true
cat >>/etc/redis/redis.conf <<'CONF'
bind $h 127.0.0.1
maxmemory 64mb
appendonly yes
min-replicas-to-write 1
replica-announce-ip $h
user default off
user admin on >$pw ~* &* +@all
masteruser admin
masterauth $pw
$replicaof
CONF
systemctl restart redis-server
install -o redis -g redis -m 0640 /dev/null /etc/redis/sentinel.conf
cat >/etc/redis/sentinel.conf <<'CONF'
port 26379
bind $h 127.0.0.1
dir /var/lib/redis
logfile /var/log/redis/redis-sentinel.log
sentinel announce-ip $h
sentinel monitor mymaster $master 6379 2
sentinel auth-user mymaster admin
sentinel auth-pass mymaster $pw
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 10000
CONF
systemctl restart redis-sentinel
EOF
    [[ $proxies == *" $h "* ]] || return 0
    cat <<EOF
cat >/etc/haproxy/haproxy.cfg <<'CONF'
defaults
    mode tcp
    timeout connect 1s
    timeout client 1h
    timeout server 1h
    timeout check 500ms
frontend redis_write
    bind $vip:6379
    default_backend redis_master
backend redis_master
    option tcp-check
    tcp-check send "AUTH admin $pw\r\n"
    tcp-check expect string +OK
    tcp-check send "ROLE\r\n"
    tcp-check expect string master
$(for s in "${hosts[@]}"; do echo "    server r$s $s:6379 check inter 1000 fall 2 rise 2"; done)
CONF
systemctl restart haproxy
cat >/etc/keepalived/keepalived.conf <<'CONF'
vrrp_instance redis {
    state BACKUP
    interface @IFACE@
    virtual_router_id 52
    priority 100
    advert_int 1
    unicast_src_ip $h
    unicast_peer {
        $peer
    }
    virtual_ipaddress {
        $vip/32
    }
}
CONF
iface=\$(ip -o -4 addr show | awk -v ip="$h" '\$4 ~ "^"ip"/" {print \$2; exit}')
sed -i "s/@IFACE@/\$iface/" /etc/keepalived/keepalived.conf
systemctl restart keepalived
EOF
}

for h in "${hosts[@]}"; do host_script "$h" | ssh "${ssh_opts[@]}" "root@$h" bash -s; done

# Ready when every sentinel sees the other sentinels and every replica, and the VIP answers.
want=$((${#hosts[@]} - 1))
for h in "${hosts[@]}"; do
    until ssh "${ssh_opts[@]}" "root@$h" "redis-cli -p 26379 sentinel master mymaster" |
        awk -v want="$want" '/^num-slaves$/ {getline; s = $1} /^num-other-sentinels$/ {getline; o = $1} END {exit !(s == want && o == want)}'; do
        sleep 0.2
    done
done
until REDISCLI_AUTH=$pw timeout 1 redis-cli -h "$vip" --user admin role 2>/dev/null | grep -q '^master$'; do sleep 0.2; done
