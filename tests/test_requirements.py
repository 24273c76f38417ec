"""No silent skips in CI: a machine without the suite's system packages fails the run
with one line naming them, where a developer's run skips and says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pytest_run(*args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    """pytest in a child whose PATH holds only the virtualenv: to it, espeak-ng, ffmpeg,
    chromium and chromedriver (all in /usr/bin) are not installed."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_XDIST_WORKER")}
    env["PATH"] = str(Path(sys.executable).parent)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_in_ci_a_missing_system_package_fails_the_run_with_one_line_naming_it() -> None:
    done = pytest_run("tests/test_config.py", ci=True)
    assert done.returncode != 0, "CI must not pass without the suite's tools"
    lines = (done.stdout + done.stderr).splitlines()
    [line] = [line for line in lines if line.startswith("Exit: CI: missing")]
    assert "espeak-ng" in line and "ffmpeg" in line and "chromium" in line
    assert "apt-get install -y" in line
    assert " passed" not in done.stdout, "no test ran"


def test_outside_ci_the_tests_that_need_it_skip_and_say_why() -> None:
    done = pytest_run(
        "tests/test_transcribe_parallel.py::test_windows_are_joined_in_order_with_their_offsets",
        "-ra",
        ci=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "2 skipped" in done.stdout
    assert "SKIPPED" in done.stdout and "missing espeak-ng, ffmpeg" in done.stdout
