#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit, conformance, sandbox and end-to-end tests,
# then the property-based pass over the API (scripts/fuzz.sh).
# Installs what the tests need first; every test starts (and stops) its own servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/install-redis.sh
scripts/install-browser.sh
scripts/postgres.sh install
scripts/install-kafka-broker.sh
scripts/install-fuzz.sh
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace --no-fail-fast
# The property-based pass over the API (about two minutes at 10 examples per operation).
scripts/fuzz.sh 10 300
