#!/usr/bin/env bash
# Installs what integr8s needs at run time on Debian/Ubuntu: bubblewrap (the sandbox) and the
# language runtimes the sandbox runs. Idempotent: installs only what is missing.
set -euo pipefail

packages=(bubblewrap python3 ruby golang-go nodejs bash gcc g++ rustc openjdk-17-jdk-headless php-cli perl lua5.4)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Node.js from another source (e.g. NodeSource) also satisfies nodejs.
if [[ " ${missing[*]} " == *" nodejs "* ]] && [ -x /usr/bin/node ]; then
  missing=("${missing[@]/nodejs/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "integr8s needs these packages: ${missing[*]} (bubblewrap provides 'bwrap')." >&2
  echo "Install them with your package manager, then run this again." >&2
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "Missing packages: ${missing[*]}. Run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
