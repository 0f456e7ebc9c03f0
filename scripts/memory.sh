#!/usr/bin/env bash
# Resident memory of `integr8s serve` (not part of CI): idle after start, every 200 runs over
# RUNS executions in every installed language (output-cap and large-output runs mixed in), at
# the end, and after a minute idle. Prints the figures; the server log is target/memory/server.log.
#
#   scripts/memory.sh [RUNS] [CLIENTS]
#
# Uses target/release/integr8s when built, else target/debug/integr8s (MEMORY_BIN overrides);
# builds the debug binary when neither exists. 127.0.0.1, a free port, a temporary data dir.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${1:-2000}"
CLIENTS="${2:-4}"
BIN="${MEMORY_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x target/release/integr8s ]; then BIN=target/release/integr8s
  else
    [ -x target/debug/integr8s ] || cargo build -p integr8s-server
    BIN=target/debug/integr8s
  fi
fi
OUT="target/memory"
mkdir -p "$OUT"
DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

cleanup() {
  if [ -n "${PID:-}" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"; wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT

# The request throttles are off so that the runs measure the server, not the limits.
INTEGR8S_RATE_LIMIT__ENABLED=false \
INTEGR8S_AUTH__REGISTER_PER_IP_PER_HOUR=0 \
INTEGR8S_SANDBOX__UID_BASE="${MEMORY_UID_BASE:-920000}" \
  "$BIN" serve --host 127.0.0.1 --port "$PORT" --data-dir "$DATA" >"$OUT/server.log" 2>&1 &
PID=$!

PYTHONPATH=scripts python3 scripts/memory.py --base "http://127.0.0.1:$PORT" --pid "$PID" \
  --runs "$RUNS" --clients "$CLIENTS" --idle "${MEMORY_IDLE:-60}"
