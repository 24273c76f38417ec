#!/usr/bin/env bash
# The second command: install everything the tests need on a bare Debian machine
# (espeak-ng, ffmpeg, postgresql, chromium), then run lint, type checks and the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k feeds
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)  # the email layout check
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "please install these Debian packages first: ${need[*]}" >&2
    exit 1
  fi
  echo "installing system packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

bash scripts/venv.sh dev,openai-whisper
echo "== ruff";  .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy";  .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
