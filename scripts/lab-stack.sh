#!/usr/bin/env bash
# Creates (or refreshes the config of) a stack that targets the lab hosts: their addresses,
# the lab's SSH key and generated passwords (secrets), lab-sized memory and timings. Expects scripts/env.sh
# to have been sourced (it also provides the lab's passphrase).
#   scripts/lab-stack.sh <stack>
set -euo pipefail
stack=${1:?usage: lab-stack.sh <stack>}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

pulumi stack select "$stack" 2>/dev/null || pulumi stack init "$stack" >/dev/null

pulumi config rm --stack "$stack" redis-ha:nodes >/dev/null 2>&1 || true
i=0
while read -r name ip; do
    pulumi config set --stack "$stack" --path "redis-ha:nodes[$i].name" "$name"
    pulumi config set --stack "$stack" --path "redis-ha:nodes[$i].host" "$ip"
    i=$((i + 1))
done < <(bash lab/lab.sh hosts)
pulumi config set --stack "$stack" --secret redis-ha:sshPrivateKey <"$(bash lab/lab.sh key)"
for key in adminPassword replicationPassword sentinelAuthPassword sentinelPassword appPassword healthCheckPassword statsPassword; do
    if ! pulumi config get --stack "$stack" "redis-ha:$key" >/dev/null 2>&1; then
        head -c 32 /dev/urandom | base64 | tr -d '/+=' | pulumi config set --stack "$stack" --secret "redis-ha:$key"
    fi
done
# Small memory and fast failure detection suit the lab; production keeps Redis's defaults.
pulumi config set --stack "$stack" --path redis-ha:redis.maxmemory 64mb
pulumi config set --stack "$stack" --path redis-ha:sentinel.downAfterMilliseconds 1000
pulumi config set --stack "$stack" --path redis-ha:sentinel.failoverTimeout 10000
# The VIP proxy on the first two hosts, the VIPs floating between them; .100 and .101 are free.
# (`read` from a here-string: reading to the end of input without a newline would fail under set -e)
mapfile -t lab_hosts < <(bash lab/lab.sh hosts)
read -r first first_ip <<<"${lab_hosts[0]}"
read -r second _ <<<"${lab_hosts[1]}"
subnet=${first_ip%.*}
pulumi config set --stack "$stack" --path 'redis-ha:proxy.nodes[0]' "$first"
pulumi config set --stack "$stack" --path 'redis-ha:proxy.nodes[1]' "$second"
pulumi config set --stack "$stack" --path redis-ha:proxy.writeVip "$subnet.100"
pulumi config set --stack "$stack" --path redis-ha:proxy.readVip "$subnet.101"
echo "stack $stack targets: $(bash lab/lab.sh hosts | tr '\n' ' ')"
