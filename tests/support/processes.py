"""Processes as /proc shows them: which Whisper workers run below a process, which live;
and `digest` run as a user runs it, in its own process, with every child it starts marked."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from digest.cli.children import descendants


def whisper_workers(root: int) -> list[int]:
    """Whisper worker processes below `root` (only these: other tests' may run alongside)."""
    pids = []
    for pid in descendants(root):
        try:
            if b"digest.transcripts.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return pids


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class WorkerWatch:
    """Notes every Whisper worker that appears below `root` while the block runs (not the
    ones already there: a flow run in this process keeps its warm worker)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.before = set(whisper_workers(root))
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.seen.update(set(whisper_workers(self.root)) - self.before)
            self._stop.wait(0.02)

    def __enter__(self) -> WorkerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


MARKER = "DIGEST_TEST_RUN"


def marked(token: str) -> list[int]:
    """Processes on this machine whose environment carries our marker: the run and all
    it started (children inherit the environment, orphans included)."""
    found = []
    needle = f"{MARKER}={token}".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def gone(token: str, seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := marked(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def digest_env(home: Path, **extra: str) -> tuple[dict[str, str], str]:
    token = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(home), MARKER: token, **extra})
    return env, token


def sample_config(tmp_path: Path) -> Path:
    config = tmp_path / "digest.toml"
    config.write_text(f'[storage]\nstate_dir = "{tmp_path / "state"}"\n')
    return config


def digest(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", "--config", str(config), *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
