#!/usr/bin/env bash
# Regression guard: measures this working tree against an earlier commit in
# the same run (alternating, 3 rounds) on the hot path and prints the ratios.
#   npm run bench:guard              # uncommitted server changes: against HEAD; a clean tree: against
#                                    # the commit before the last one that changed the server sources
#   npm run bench:guard -- <rev>     # against any commit
# Environment: ROUNDS (3), DURATION_S (5), REALISTIC_S (20), GUARD_BASELINE=1
# (the baselines too), GUARD_PLAN (default redis:closed+open+realistic,memory:closed;
# modes closed, open, realistic, realistic-patch). See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-}
if [ -z "$rev" ]; then
  if git diff --quiet HEAD -- packages/protocol/src packages/server/src; then
    rev="$(git log -1 --format=%H -- packages/protocol/src packages/server/src)~1"
  else
    rev=HEAD
  fi
fi
sha=$(git rev-parse --short "$rev")
echo "guard: building this tree and $sha ($(git log -1 --format=%s "$sha" | cut -c1-70))" >&2
npx tsc -b packages/protocol packages/server >&2
previous=$(bash bench/build-previous.sh "$sha")
PREVIOUS_CLI="$previous" PREVIOUS_LABEL="$sha" SCENARIO=guard exec node bench/presence-load-test.mjs
