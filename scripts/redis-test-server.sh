#!/usr/bin/env bash
# Runs a throwaway redis-server for one test in the foreground: loopback only, on the given
# port, nothing written to disk. The test that starts it stops it (its pid is this process).
# Usage: scripts/redis-test-server.sh PORT
set -euo pipefail
port="${1:?usage: redis-test-server.sh PORT}"
exec redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --daemonize no --loglevel warning
