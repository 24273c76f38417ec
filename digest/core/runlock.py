"""One pipeline run at a time per state directory, as rss2email locks its data file.

Two `digest run`s at once (cron overlapping a slow run, an operator typing one by
hand) would fight over SQLite's write lock and could both send the same digest.
The lock is `flock` on `<state_dir>/digest.lock`: the kernel drops it when its
holder dies, even by SIGKILL, so a crash never leaves a stale lock behind. It
guards one machine; workers sharing PostgreSQL coordinate through Prefect instead.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from digest.core.errors import Busy
from digest.core.statefiles import private_dir

LOCK_NAME = "digest.lock"


@contextmanager
def run_lock(state_dir: Path, command: str) -> Iterator[None]:
    """Hold the state directory's lock for the duration, or raise Busy naming the holder."""
    private_dir(state_dir)
    path = state_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise Busy(
                f"another pipeline command is running on {state_dir} ({holder}); "
                "wait for it to finish (the lock frees itself when that process ends)"
            ) from None
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"`digest {command}`, pid {os.getpid()}, since {stamp}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
