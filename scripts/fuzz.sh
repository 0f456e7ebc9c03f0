#!/usr/bin/env bash
# A property-based pass over the whole HTTP API, generated from our own OpenAPI document by
# schemathesis (installed by scripts/install-fuzz.sh into .tools/fuzz-venv), against the real
# binary on 127.0.0.1 and a free port, signed in as the seeded admin (so admin routes are
# covered too). Fails on any response >= 500 and on any error answer not in the contract's
# shape ({"detail": "..."} or {"detail": [{loc, msg, type}]}); prints how many requests it made.
#
#   scripts/fuzz.sh [MAX_EXAMPLES_PER_OPERATION] [TIME_LIMIT_SECONDS]     (defaults: 25, 600)
#
# Left out: logout (it would end the session the pass runs under) and the two event streams
# (they stay open by design; tests of their own cover them).
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES="${1:-25}"
LIMIT="${2:-600}"
scripts/install-fuzz.sh
# The binary of this tree (a no-op when it is up to date), unless one is named.
if [ -n "${FUZZ_BIN:-}" ]; then
  BIN="$FUZZ_BIN"
else
  cargo build -p integr8s-server
  BIN="target/debug/integr8s"
fi
OUT="target/fuzz"
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

# Throttles off: the pass measures answers, not limits.
INTEGR8S_RATE_LIMIT__ENABLED=false \
INTEGR8S_AUTH__LOGIN_PER_IP_PER_MINUTE=0 \
INTEGR8S_AUTH__LOGIN_PER_ACCOUNT_PER_MINUTE=0 \
INTEGR8S_AUTH__REGISTER_PER_IP_PER_HOUR=0 \
INTEGR8S_SANDBOX__UID_BASE="${FUZZ_UID_BASE:-910000}" \
  "$BIN" serve --host 127.0.0.1 --port "$PORT" --data-dir "$DATA" >"$OUT/server.log" 2>&1 &
PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 240); do
  curl -fs "$BASE/api/v1/health/live" >/dev/null 2>&1 && break
  sleep 0.5
done

LOGIN="$(curl -fs -D "$OUT/login.headers" "$BASE/api/v1/auth/login" -d 'username=admin&password=admin123')"
CSRF="$(printf '%s' "$LOGIN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')"
COOKIE="$(grep -i '^set-cookie:' "$OUT/login.headers" | sed -E 's/^[Ss]et-[Cc]ookie: ([^;]*).*/\1/' | paste -sd ';' - | sed 's/;/; /g')"

export FUZZ_COUNT_FILE="$OUT/count.json"
export SCHEMATHESIS_HOOKS=fuzz_hooks
export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
set +e
timeout --signal=INT "$LIMIT" .tools/fuzz-venv/bin/st run "$BASE/openapi.json" \
  --experimental=openapi-3.1 \
  --checks not_a_server_error,error_in_contract_shape \
  --header "Cookie: $COOKIE" --header "X-CSRF-Token: $CSRF" \
  --exclude-path /api/v1/auth/logout \
  --exclude-path /api/v1/events/notifications/stream \
  --exclude-path '/api/v1/events/executions/{execution_id}' \
  --hypothesis-max-examples "$EXAMPLES" --hypothesis-seed 13 \
  --hypothesis-suppress-health-check all \
  --request-timeout 20000 --workers 2 \
  --junit-xml "$OUT/junit.xml" 2>&1 | tee "$OUT/report.txt"
STATUS=${PIPESTATUS[0]}
set -e
python3 - "$FUZZ_COUNT_FILE" <<'PY'
import json, sys
try:
    c = json.load(open(sys.argv[1]))
except OSError:
    sys.exit("no request count was written")
print(f"fuzz: {c['requests']} requests; by status: {dict(sorted(c['by_status'].items()))}")
fives = sum(n for s, n in c["by_status"].items() if s.startswith("5"))
print(f"fuzz: {fives} responses >= 500")
if c["requests"] == 0:
    sys.exit("fuzz: no request was made")
PY
exit "$STATUS"
