#!/usr/bin/env bash
# The one command of the README: installs what the project needs, starts the lab and deploys
# the cluster onto it with `pulumi up` on the stack `lab` (local file backend, passphrase
# secrets). Safe to run again: the lab and the stack are reused, and a second run changes nothing.
#   scripts/lab-deploy.sh [extra pulumi up flags]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/install-deps.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh
bash lab/lab.sh up
stack=${LAB_STACK:-lab}
# A stack deployed onto an earlier lab (since torn down) describes servers that are gone: start
# it afresh rather than let it believe everything is in place.
seen="$REDIS_HA_CACHE/lab/deployed-generation.$stack"
if [ "$(cat "$seen" 2>/dev/null)" != "$(bash lab/lab.sh generation)" ]; then
    pulumi stack rm --yes --force --stack "$stack" >/dev/null 2>&1 || true
    rm -f "Pulumi.$stack.yaml"
fi
bash scripts/lab-stack.sh "$stack"
bash lab/lab.sh generation >"$seen"
pulumi up --yes --stack "$stack" "$@"
