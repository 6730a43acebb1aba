#!/usr/bin/env bash
# Builds the server of an earlier commit in a temporary worktree and prints
# the path of its CLI, for PREVIOUS_CLI (the compare scenario then measures
# the current build against it in the same run):
#   PREVIOUS_CLI=$(bash bench/build-previous.sh HEAD~1) SCENARIO=compare npm run benchmark:presence
set -euo pipefail
rev=${1:?usage: build-previous.sh <commit>}
cd "$(dirname "$0")/.."
sha=$(git rev-parse --short "$rev")
dir=${TMPDIR:-/tmp}/rm-previous-$sha
if [ ! -f "$dir/packages/server/dist/app/cli.js" ]; then
  rm -rf "$dir"
  git worktree prune
  git worktree add --detach "$dir" "$sha" >&2
  (cd "$dir" && npm ci --no-audit --no-fund >&2 && npx tsc -b packages/protocol packages/server >&2)
fi
echo "$dir/packages/server/dist/app/cli.js"
