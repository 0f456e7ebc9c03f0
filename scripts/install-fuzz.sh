#!/usr/bin/env bash
# Installs schemathesis (from PyPI, pinned) into a virtual environment under .tools/fuzz-venv of
# this checkout, for the property-based pass over the API (scripts/fuzz.sh). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="3.39.16"
# The hypothesis release this schemathesis was made with (later ones removed an API it uses).
HYPOTHESIS="6.131.0"
VENV=".tools/fuzz-venv"

# fuzz.sh waits for the server and signs in with curl.
command -v curl >/dev/null 2>&1 || "$(dirname "$0")/apt-install.sh" curl
if [ -x "$VENV/bin/st" ] && "$VENV/bin/python" -c "import schemathesis, hypothesis, sys; sys.exit(schemathesis.__version__ != '$VERSION' or hypothesis.__version__ != '$HYPOTHESIS')" 2>/dev/null; then
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  "$(dirname "$0")/apt-install.sh" python3-venv
fi
mkdir -p .tools
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION" "hypothesis==$HYPOTHESIS"
