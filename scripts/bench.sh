#!/usr/bin/env bash
# `npm run bench`: installs what the project needs, then prints the speed figures of
# scripts/bench/main.ts (deploys, failovers, VIP throughput, and with TLS) from one run. It
# boots the lab afresh many times and tears it down at the end: about 30 minutes with BENCH_N=5.
#   BENCH_N=<trials per figure> scripts/bench.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh
npx ts-node scripts/bench/main.ts
