"""Headless Chromium (Debian's package) with the flags this closed network needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(
    profile: Path, *args: str, width: int = 800, height: int = 4000, wait_ms: int = 3000
) -> str:
    """Run Chromium headless on `args` (e.g. --dump-dom URL) and return its stdout."""
    assert CHROMIUM, "chromium is not installed (scripts/test.sh installs it)"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        f"--virtual-time-budget={wait_ms}",
        "--allow-file-access-from-files",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180
    ).stdout
