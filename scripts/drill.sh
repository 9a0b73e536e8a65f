#!/usr/bin/env bash
# `npm run drill`: deploys the lab stack if needed (scripts/lab-deploy.sh, a no-op when it is
# up to date), then runs the failover drill against it and the VIP benchmark.
#   scripts/drill.sh [mode …]    modes: crash stop poweroff netcut (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/lab-deploy.sh --skip-preview >/dev/null
# shellcheck source=scripts/env.sh
. scripts/env.sh
npx ts-node scripts/drill/cli.ts "${LAB_STACK:-lab}" "$@"
