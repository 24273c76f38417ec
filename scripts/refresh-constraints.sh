#!/usr/bin/env bash
# Re-resolve dependencies from pyproject.toml in a scratch venv and rewrite constraints.txt.
# Run the full test suite afterwards: that is what makes the new set "seen working".
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q -e ".[dev,openai-whisper]"
{ sed -n '1,3p' constraints.txt; "$tmp/venv/bin/pip" freeze --exclude-editable | grep -v "^podcast-digest" | sed -E "s/\+cpu$//"; } > constraints.new
mv constraints.new constraints.txt
rm -rf "$tmp"
