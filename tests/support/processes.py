"""Processes as /proc shows them: which Whisper workers run below a process, which live."""

from __future__ import annotations

import threading
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
