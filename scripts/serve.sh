#!/usr/bin/env bash
# Starts the all-in-one integr8s server (http://127.0.0.1:8080 by default), installing the
# sandbox and language runtimes first. Extra arguments go to `integr8s serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked --bin integr8s
exec target/release/integr8s serve "$@"
