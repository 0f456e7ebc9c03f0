#!/usr/bin/env bash
# Installs what integr8s needs on Debian/Ubuntu: bubblewrap (the sandbox), the language runtimes
# the sandbox runs, and make with a C compiler (the build compiles jemalloc and the bundled
# librdkafka from source). Idempotent: installs only what is missing.
set -euo pipefail

packages=(bubblewrap python3 ruby golang-go nodejs bash gcc g++ rustc openjdk-17-jdk-headless php-cli perl lua5.4)
# What building the binary needs besides Rust (gcc comes with the runtimes above).
build_packages=(make)
missing=()
for p in "${packages[@]}" "${build_packages[@]}"; do
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

# bubblewrap provides the sandbox's `bwrap`.
"$(dirname "$0")/apt-install.sh" "${missing[@]}"
