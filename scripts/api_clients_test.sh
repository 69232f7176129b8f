#!/usr/bin/env bash
# `clip serve` against the official OpenAI Node client and an immich-shaped request: installs
# the pinned `openai` package from tests/api_clients/package-lock.json (npm ci, once) and runs
# tests/api_clients/api_clients_test.js with the machine's Node.js.
# Usage: scripts/api_clients_test.sh [build folder (default: build)]
# Exit 77 (a skip for CTest) when the package cannot be installed, e.g. offline.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
command -v node >/dev/null || { echo "api clients test: node is not installed" >&2; exit 1; }
[ -x "$build/clip" ] || { echo "api clients test: $build/clip is not built" >&2; exit 1; }
if [ ! -d tests/api_clients/node_modules/openai ] || \
   [ tests/api_clients/package-lock.json -nt tests/api_clients/node_modules/.package-lock.json ]; then
  if ! (cd tests/api_clients && npm ci --no-audit --no-fund --loglevel=error); then
    echo "api clients test: SKIPPED: 'npm ci' could not install the openai package (offline, or no registry?);" \
         "run it once with network access: (cd tests/api_clients && npm ci)" >&2
    exit 77
  fi
fi
mkdir -p "$build/api_clients"
node tests/api_clients/api_clients_test.js "$build/clip" "$build/api_clients"
