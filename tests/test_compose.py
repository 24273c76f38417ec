"""The Composer: one MIME build per day, personal parts substituted in the bytes.

The guarantee is simple to state and to test: for every subscriber, the substituted
bytes are exactly what a full build would have produced, and anything the fast path
cannot handle safely (a non-ASCII address, an unusual token) gets the full build.
"""

from __future__ import annotations

from dataclasses import replace
from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest

from digest.core.clock import utcnow
from digest.core.models import EmailContent, Subscriber
from digest.delivery.message import Composer, build_message, links_for, serialise
from digest.edition.render import render_email
from digest.jobs.edition import edition_items
from digest.store import Store
from tests.support.seed import seed_insights

SENDER = "Podcast Digest <digest@news.example.org>"
BASE = "https://digest.example.org"
DATE = "Mon, 23 Nov 2026 12:00:00 +0000"


@pytest.fixture
def content(make_config: Any) -> EmailContent:
    config = make_config()
    store = Store(config.database_url)
    seed_insights(store, config)
    now = utcnow()
    day = now.date().isoformat()
    items = edition_items(store, config, day, now)
    assert items
    return render_email(day, items, archive_url=f"{BASE}/archive/{day}")


def reader(n: int, email: str | None = None, token: str | None = None) -> Subscriber:
    return Subscriber(
        id=n,
        email=email or f"reader{n}@example.com",
        timezone=None,
        send_time=None,
        status="active",
        unsubscribe_token=token or f"{n:04d}-tok_" + "x" * 23,
        created_at=utcnow(),
    )


def full_build(content: EmailContent, subscriber: Subscriber, message_id: str) -> bytes:
    links = links_for(subscriber, BASE, SENDER)
    message = build_message(content, subscriber, links, SENDER, message_id, DATE)
    return serialise(message).data


def test_every_substituted_message_is_byte_identical_to_a_full_build(
    content: EmailContent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("digest.delivery.message.date_header", lambda: DATE)
    composer = Composer(content, BASE, SENDER)
    for n in range(1, 6):
        subscriber = reader(n)
        out = composer.compose(subscriber, f"<id-{n}@news.example.org>")
        assert composer.template is not None, "the fast path was taken"
        assert out.data == full_build(content, subscriber, f"<id-{n}@news.example.org>")
        assert (out.sender, out.recipient, out.smtputf8) == (
            "digest@news.example.org",
            subscriber.email,
            False,
        )
        parsed = message_from_bytes(out.data, policy=default)
        assert parsed["To"] == subscriber.email
        assert subscriber.unsubscribe_token in parsed["List-Unsubscribe"]
        html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert f"{BASE}/unsubscribe/{subscriber.unsubscribe_token}" in html
        assert "Zq0Slot" not in out.data.decode() and "zq0-slot" not in out.data.decode()


@pytest.mark.parametrize(
    "subscriber",
    [
        reader(7, email="zoë@example.com"),  # needs SMTPUTF8: full build
        reader(8, token="legacy-token"),  # not the 32-character shape: full build
    ],
    ids=["unicode-address", "odd-token"],
)
def test_unusual_subscribers_get_a_full_build(
    content: EmailContent, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("digest.delivery.message.date_header", lambda: DATE)
    out = Composer(content, BASE, SENDER).compose(subscriber, "<id@news.example.org>")
    assert out.data == full_build(content, subscriber, "<id@news.example.org>")
    assert out.smtputf8 == (not subscriber.email.isascii())
    assert subscriber.unsubscribe_token.encode() in out.data


def test_a_failed_template_check_falls_back_to_full_builds(
    content: EmailContent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("digest.delivery.message.date_header", lambda: DATE)
    composer = Composer(content, BASE, SENDER)
    broken = replace(content, text=content.text + "\nZq0SlotForTheUnsubscribeToken0qZ")
    composer.content = broken  # the slot text in the content itself: substitution would lie
    first = composer.compose(reader(1), "<a@news.example.org>")
    assert composer.template is None and composer.checked
    assert first.data == full_build(broken, reader(1), "<a@news.example.org>")
    second = composer.compose(reader(2), "<b@news.example.org>")
    assert second.data == full_build(broken, reader(2), "<b@news.example.org>")
