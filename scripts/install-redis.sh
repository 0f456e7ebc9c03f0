#!/usr/bin/env bash
# Installs redis-server (Debian/Ubuntu), which the tests of the Redis limiter adapter start on
# free loopback ports. Idempotent: does nothing when redis-server is already there.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "the tests need redis-server: install it with your package manager, then run this again." >&2
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "redis-server is missing. Run as root: apt-get update && apt-get install -y redis-server" >&2
    exit 1
  fi
fi

echo "installing: redis-server" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package may start a system-wide server; the tests never use it, they start their own.
