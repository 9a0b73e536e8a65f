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
bash scripts/lab-stack.sh "${LAB_STACK:-lab}"
pulumi up --yes --stack "${LAB_STACK:-lab}" "$@"
