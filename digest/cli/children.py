"""No process outlives the command that started it.

A `digest run` starts Prefect's temporary API server and a Whisper worker. Prefect
stops its server from an `atexit` hook, which does not run when the interpreter is
killed by a signal it does not handle, and a failed start leaves it to that hook
alone. The command line therefore turns SIGTERM and SIGHUP into a normal exit and,
on the way out, stops whatever this process started and left running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from types import FrameType

PROC = Path("/proc")


def descendants(pid: int) -> list[int]:
    """Every living process below `pid`, children first (Linux /proc; elsewhere none)."""
    parents: dict[int, list[int]] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            # The command name (2nd field) may hold spaces or parentheses: split after it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it exited while we looked
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], list(parents.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue.extend(parents.get(child, []))
    return found


def stop_descendants(grace: float = 5.0) -> list[int]:
    """SIGTERM what this process started, then SIGKILL what is left after `grace` s."""
    pids = descendants(os.getpid())
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.05)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    return pids


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP (a service manager, a closed terminal) exit like Ctrl-C does:
    through `finally` blocks and exit hooks, so cleanup runs."""

    def leave(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, leave)


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent to reap it."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"
