#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, builds, lints, runs every
# test tier, and ends with a plain "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
npm run build --silent
npm run lint --silent

results=$(mktemp -d)/vitest.json
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" || status=$?
node scripts/summarize-tests.mjs "$results" || status=$?
exit "$status"
