#!/usr/bin/env bash
# A soak of the real binary (not part of CI): many clients log in, run scripts, follow their
# execution streams and keep notification streams open for DURATION minutes (default 30), with
# short retention so the sweep's work shows. RSS, open files, database size and the number of
# events are recorded at the start, every minute and at the end, in target/soak/metrics.csv, and
# summed up on stdout.
#
#   scripts/soak.sh [DURATION_MINUTES] [CLIENTS]
#
# Uses target/release/integr8s when built, else target/debug/integr8s (SOAK_BIN overrides);
# builds the debug binary when neither exists. Runs on 127.0.0.1 and a free port; the data
# directory is a temporary one, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES="${1:-30}"
CLIENTS="${2:-8}"
BIN="${SOAK_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x target/release/integr8s ]; then BIN=target/release/integr8s
  else
    [ -x target/debug/integr8s ] || cargo build -p integr8s-server
    BIN=target/debug/integr8s
  fi
fi
OUT="target/soak"
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

# Short retention so that an half-hour soak shows the sweep keeping the tables bounded; the
# request throttles are off so the clients measure the server, not the limits.
INTEGR8S_RETENTION__EVENTS=10m \
INTEGR8S_RETENTION__EXECUTIONS=10m \
INTEGR8S_RETENTION__NOTIFICATIONS=10m \
INTEGR8S_RETENTION__AUDIT=10m \
INTEGR8S_RETENTION__SWEEP_INTERVAL=1m \
INTEGR8S_RATE_LIMIT__ENABLED=false \
INTEGR8S_AUTH__LOGIN_PER_IP_PER_MINUTE=0 \
INTEGR8S_AUTH__LOGIN_PER_ACCOUNT_PER_MINUTE=0 \
INTEGR8S_AUTH__REGISTER_PER_IP_PER_HOUR=0 \
INTEGR8S_STREAMS__NOTIFICATION_LIFETIME_SECONDS=60 \
INTEGR8S_SANDBOX__UID_BASE="${SOAK_UID_BASE:-900000}" \
  "$BIN" serve --host 127.0.0.1 --port "$PORT" --data-dir "$DATA" >"$OUT/server.log" 2>&1 &
PID=$!

python3 scripts/soak.py --base "http://127.0.0.1:$PORT" --pid "$PID" --db "$DATA/integr8s.db" \
  --minutes "$MINUTES" --clients "$CLIENTS" --out "$OUT/metrics.csv"
