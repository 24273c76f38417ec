"""The one place that asks for the time, so tests can pass their own `now`."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
