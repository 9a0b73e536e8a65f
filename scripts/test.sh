#!/usr/bin/env bash
# The one test command (`npm test`): installs what is missing, checks the shell scripts and the
# types, runs the unit tests (Pulumi mocks), then starts a fresh lab and runs the end-to-end
# tests (real pulumi preview/up/destroy on the lab hosts). The lab is torn down at the end,
# pass or fail; REDIS_HA_KEEP_LAB=1 keeps it for a look. Ends with one "N passed, N failed" line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/install-deps.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh

log=$(mktemp)
teardown() {
    local rc=$?
    if [ "${REDIS_HA_KEEP_LAB:-0}" != 1 ]; then bash lab/lab.sh down || true; fi
    local passed failed
    passed=$(awk '/^ *[0-9]+ passing/ { s += $1 } END { print s + 0 }' "$log")
    failed=$(awk '/^ *[0-9]+ failing/ { s += $1 } END { print s + 0 }' "$log")
    rm -f "$log"
    [ "$rc" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1 # a step failed outside mocha
    echo "tests: $passed passed, $failed failed"
    exit "$rc"
}
trap teardown EXIT

echo "== shellcheck"
shellcheck -x assets/*.sh assets/hooks/*.sh assets/lib/*.sh lab/*.sh scripts/*.sh .ci/run
echo "== typescript"
npx tsc --noEmit -p . --noCheck false
echo "== unit tests (Pulumi mocks)"
npx mocha 'tests/unit/**/*.test.ts' 2>&1 | tee -a "$log"
echo "== lab (fresh hosts)"
bash lab/lab.sh down >/dev/null 2>&1 || true
bash lab/lab.sh up
echo "== end-to-end tests (real pulumi on the lab)"
# --exit: a client a failed test left connected must not keep the run alive after the lab is gone.
npx mocha --timeout 1800000 --exit 'tests/e2e/**/*.test.ts' 2>&1 | tee -a "$log"
