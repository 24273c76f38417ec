"""Waiting on what can be observed (a row, a process, a server's answer), never on a
guess of how long something takes: a loaded machine is slower, not differently
ordered."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], seconds: float, what: str, *, every: float = 0.5) -> T:
    """The first truthy value `check` returns; AssertionError naming `what` once
    `seconds` have passed without one. Exceptions from `check` propagate."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(every)
