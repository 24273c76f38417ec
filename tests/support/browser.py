"""Headless Chromium (Debian's package) with the flags this closed network needs."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def webdriver_session(profile: Path, *, hosts: dict[str, str] | None = None) -> Iterator[Any]:
    """Selenium driving Debian's chromium through chromium-driver (nothing downloaded).
    `hosts` maps public names to loopback addresses (`digest.example.org` to
    `127.0.0.1:PORT`), as DNS and a reverse proxy would, so mailed links work as sent."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    assert CHROMIUM and driver_path, "chromium-driver is not installed (scripts/test.sh does it)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    if hosts:
        rules = ", ".join(f"MAP {name} {target}" for name, target in hosts.items())
        options.add_argument(f"--host-resolver-rules={rules}")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
