#!/usr/bin/env bash
# Create ./.venv (once) and install podcast-digest into it with the pinned constraints.
# Usage: scripts/venv.sh [EXTRAS]   e.g. scripts/venv.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "podcast-digest needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || { echo "python3 -m venv failed: install python3-venv" >&2; exit 1; }
  .venv/bin/python -m pip install -q --upgrade pip
fi
spec="."
[ -n "${1:-}" ] && spec=".[$1]"
.venv/bin/python -m pip install -q -c constraints.txt -e "$spec"
