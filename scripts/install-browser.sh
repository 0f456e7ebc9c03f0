#!/usr/bin/env bash
# Installs what the console's browser tests need: Debian's chromium, Node.js and npm (with apt,
# when missing), then playwright-core from the npm registry at the version the committed lock
# file pins (into crates/server/tests/browser/node_modules, which git ignores). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

scripts/apt-install.sh "${missing[@]}"

browser_tests=crates/server/tests/browser
if [ ! -d "$browser_tests/node_modules/playwright-core" ] \
  || [ "$browser_tests/package-lock.json" -nt "$browser_tests/node_modules/.package-lock.json" ]; then
  echo "installing: playwright-core (npm ci)" >&2
  (cd "$browser_tests" && npm ci --no-audit --no-fund --loglevel=error)
fi
