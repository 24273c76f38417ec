"""Progress of a run, stage by stage, for whoever watches: the terminal of a `digest
run` draws it; anywhere else (a worker, a test) nothing listens and it costs nothing.

The units of work report here (a feed recorded, an episode processed, insights kept,
a message handed over), so the CLI and the flows cannot disagree about what a run
did, and no Prefect log line is needed to see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

STAGES = ("feeds", "episodes", "insights", "messages")


class Watcher(Protocol):
    def begin(self, stage: str, total: int | None) -> None:
        """A stage starts with `total` items (None: not known ahead)."""
        ...

    def advance(self, stage: str, amount: float = 1, note: str = "") -> None: ...


_watchers: list[Watcher] = []


@contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Report this process's progress to `watcher` for the duration."""
    _watchers.append(watcher)
    try:
        yield
    finally:
        _watchers.remove(watcher)


def begin(stage: str, total: int | None = None) -> None:
    for watcher in list(_watchers):
        watcher.begin(stage, total)


def advance(stage: str, amount: float = 1, note: str = "") -> None:
    for watcher in list(_watchers):
        watcher.advance(stage, amount, note)
