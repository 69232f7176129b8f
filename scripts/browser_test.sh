#!/usr/bin/env bash
# End-to-end browser test of the `clip serve` web page: installs playwright-core from
# tests/browser/package-lock.json (npm ci, once) and runs the test with Debian's chromium.
# Usage: scripts/browser_test.sh [build folder (default: build)]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
command -v node >/dev/null || { echo "browser test: node is not installed" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "browser test: /usr/bin/chromium is missing (scripts/setup.sh installs it)" >&2; exit 1; }
[ -x "$build/clip" ] || { echo "browser test: $build/clip is not built" >&2; exit 1; }
if [ ! -d tests/browser/node_modules/playwright-core ] || \
   [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
node tests/browser/search_page_test.js "$build/clip" "$build/browser"
