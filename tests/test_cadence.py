"""Weekly readers: the week's best, on their day, once; daily readers as before."""

from __future__ import annotations

import json
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest

from digest.core.models import WEEKDAYS
from digest.jobs import send_digests, utcnow
from digest.store import Store
from tests.support.cli import command_line
from tests.support.seed import seed_insights

DATABASES = ("sqlite",)  # the calendar, not the database


def outbox(config: Any, address: str) -> dict[str, Message]:
    """Every message written for `address`, by date."""
    return {
        path.parent.name: message_from_bytes(path.read_bytes())
        for path in (config.state_dir / "outbox").glob(f"*/{address}.eml")
    }


def text_of(message: Message) -> str:
    return str(message.get_payload(0).get_payload(decode=True).decode())  # type: ignore[union-attr]


def test_a_weekly_reader_gets_the_weeks_best_once_on_their_day(
    store: Store, make_config: Any
) -> None:
    config = make_config()
    seed_insights(store, config)
    start = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    day = start + timedelta(days=3)  # their day: mid-week, so the week's start is in the past
    store.subscribers.add("daily@example.org", start)
    store.subscribers.add("weekly@example.org", start, cadence="weekly", weekday=day.weekday())
    for n in range(8):  # a week and a day, the send running at noon and again at 6 pm
        for hour in (0, 6):
            send_digests(store, config, now=start + timedelta(days=n, hours=hour))
    weekly = outbox(config, "weekly@example.org")
    assert list(weekly) == [day.date().isoformat()], "one message, on their day"
    [message] = weekly.values()
    text = text_of(message)
    assert "top 7 insights weekly" in text, text[:300]
    assert message["Subject"].startswith(f"Podcast Digest, week to {day.strftime('%a %d %b')}")
    daily = outbox(config, "daily@example.org")
    first = daily[start.date().isoformat()]
    assert "top 5 insights daily" in text_of(first), "a daily reader sees no change"
    assert not first["Subject"].startswith("Podcast Digest, week")
    reader = store.subscribers.get("weekly@example.org")
    assert reader.selection == "all|w", "its own edition, frozen apart from the daily one"
    frozen = store.digests.get(day.date().isoformat(), reader.selection)
    assert frozen is not None and len(frozen.insight_ids) == 7


def test_weekly_from_the_command_line(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = command_line(tmp_path, monkeypatch)
    digest("init")
    digest("subscribers", "add", "w@example.org", "--cadence", "weekly", "--weekday", "Friday")

    [row] = json.loads(digest("subscribers", "list", "--json"))
    assert (row["cadence"], row["weekday"]) == ("weekly", WEEKDAYS.index("friday"))
    digest("subscribers", "set", "w@example.org", "--cadence", "daily")
    [row] = json.loads(digest("subscribers", "list", "--json"))
    assert row["cadence"] == "daily"
    assert "Invalid value" in digest(
        "subscribers", "set", "w@example.org", "--weekday", "someday", ok=False
    )
