#!/usr/bin/env bash
# Installs Debian/Ubuntu packages with apt (through sudo when not root), for the install scripts
# beside this one. Usage: scripts/apt-install.sh PACKAGE...  Prints what it installs; exits
# non-zero with what to run by hand when apt or the rights to use it are missing.
set -euo pipefail
[ $# -gt 0 ] || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: $*; install them with your package manager, then run this again." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "missing: $*. Run as root: apt-get update && apt-get install -y $*" >&2
    exit 1
  fi
fi
echo "installing: $*" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
