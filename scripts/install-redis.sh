#!/usr/bin/env bash
# Installs redis-server (Debian/Ubuntu), which the tests of the Redis limiter adapter start on
# free loopback ports. Idempotent: does nothing when redis-server is already there.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi

"$(dirname "$0")/apt-install.sh" redis-server
# The package may start a system-wide server; the tests never use it, they start their own.
