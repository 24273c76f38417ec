"""Webhooks: a signed JSON POST (or a Slack message) per edition, once per reader and
endpoint, against a real receiver on loopback that checks signatures and replays;
endpoints that refuse, redirect, hang or point inwards fail alone."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from digest.core.errors import InvalidInput
from digest.core.models import Endpoint
from digest.delivery.channels.webhook import check_webhook_url, sign, verify
from digest.jobs import send_digests
from digest.jobs.status import status_report
from digest.store import Store
from tests.support.cli import command_line
from tests.support.seed import seed_insights
from tests.support.webhooks import Receiver, receiving

DATABASES = ("sqlite",)  # the channel, not the database
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = NOW.date().isoformat()


@pytest.fixture
def world(store: Store, make_config: Any) -> Any:
    config = make_config(
        webhook={"allow_private_addresses": True, "timeout_seconds": 2.0, "backoff_seconds": 0.05}
    )
    seed_insights(store, config)
    return store, config


def hook(store: Store, receiver: Receiver, email: str, fmt: str = "json") -> Endpoint:
    reader = store.subscribers.get_or_none(email) or store.subscribers.add(email, NOW)
    endpoint = store.endpoints.add(reader.id, "webhook", NOW, target=receiver.url(), format=fmt)
    receiver.secret = endpoint.secret
    return endpoint


def outbox(config: Any) -> set[str]:
    return {p.name for p in (config.state_dir / "outbox").glob("*/*.eml")}


def test_a_webhook_gets_the_edition_signed_once_and_email_only_readers_see_no_change(
    world: Any,
) -> None:
    store, config = world
    store.subscribers.add("plain@example.org", NOW)
    with receiving() as receiver:
        endpoint = hook(store, receiver, "hooked@example.org")
        report = send_digests(store, config, now=NOW)
        again = send_digests(store, config, now=NOW)
    assert sorted((r.email, r.channel, r.outcome) for r in report.results) == [
        ("hooked@example.org", "email", "sent"),
        ("hooked@example.org", endpoint.key, "sent"),
        ("plain@example.org", "email", "sent"),
    ], "the reader's email stays theirs when a webhook is added"
    assert again.results == [], "the ledger holds per channel"
    assert outbox(config) == {"plain@example.org.eml", "hooked@example.org.eml"}
    [post] = receiver.received
    assert post.valid and not post.duplicate
    data = post.data
    frozen = store.digests.get(DAY, "all")
    assert frozen is not None and data["date"] == DAY and data["subject"] == frozen.subject
    assert [i["text"] for i in data["insights"]] == [
        i.insight.text for i in store.insights.by_ids(frozen.insight_ids)
    ]
    first = data["insights"][0]
    assert first["show"] and first["episode"] and first["audio_url"].startswith("https://")
    assert post.headers["x-digest-delivery"] == data["delivery_id"]
    assert post.headers["content-type"] == "application/json"
    # What a receiver refuses: a replay later on, a body changed on the way.
    stamp = post.headers["x-digest-timestamp"]
    signature = post.headers["x-digest-signature"]
    assert verify(endpoint.secret, post.body, stamp, signature)
    assert not verify(endpoint.secret, post.body, stamp, signature, now=int(stamp) + 301)
    assert not verify(endpoint.secret, post.body + b" ", stamp, signature)
    assert not verify("another secret", post.body, stamp, signature)
    assert signature == sign(endpoint.secret, int(stamp), post.body)


def test_the_slack_format_is_an_incoming_webhook_message(world: Any) -> None:
    store, config = world
    with receiving() as receiver:
        hook(store, receiver, "team@example.org", fmt="slack")
        send_digests(store, config, now=NOW)
    [post] = receiver.received
    message = post.data
    # Slack's documented shape: `text` (the notification), at most 50 blocks; a header
    # block of plain_text up to 150 characters; sections of mrkdwn up to 3000.
    assert isinstance(message["text"], str) and message["text"]
    blocks = message["blocks"]
    assert 2 <= len(blocks) <= 50
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["type"] == "plain_text"
    assert len(blocks[0]["text"]["text"]) <= 150
    for block in blocks[1:]:
        assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
        text = block["text"]["text"]
        assert len(text) <= 3000 and text.startswith("*")
        assert "<https://" in text and "|" in text, "the source, linked to the moment"
        stripped = text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
        link_free = stripped.split("_<", 1)[0]
        assert "<" not in link_free and ">" not in link_free, "control characters escaped"
    assert set(message) == {"text", "blocks"}


def test_a_busy_receiver_is_retried_in_the_send_and_a_hanging_one_next_time_same_id(
    world: Any,
) -> None:
    store, config = world
    with receiving() as receiver:
        endpoint = hook(store, receiver, "busy@example.org")
        receiver.answers = [(503, 0.0)]
        report = send_digests(store, config, now=NOW)
        assert [r.outcome for r in report.results if r.channel == endpoint.key] == ["sent"]
        assert [r.valid for r in receiver.received] == [True, True], "503, then accepted"
        assert len({r.headers["x-digest-delivery"] for r in receiver.received}) == 1

    store.subscribers.add("slow@example.org", NOW)
    with receiving() as receiver:
        slow = hook(store, receiver, "slow@example.org")
        receiver.answers = [(200, 3.0)] * 3  # answers after the sender gave up: got it anyway
        started = time.monotonic()
        late = send_digests(store, config, now=NOW)
        assert time.monotonic() - started < 20, "a hanging receiver holds the send a bounded time"
        outcome = {r.channel: r for r in late.results if r.email == "slow@example.org"}
        assert outcome[slow.key].outcome == "failed" and "timed out" in (
            outcome[slow.key].error or ""
        )
        assert outcome["email"].outcome == "sent", "the reader's other channel goes on"
        receiver.answers = []
        retried = send_digests(store, config, now=NOW)
    assert [r.outcome for r in retried.results] == ["sent"]
    ids = {r.headers["x-digest-delivery"] for r in receiver.received}
    assert len(ids) == 1, "every try of one copy carries one delivery id"
    assert receiver.received[-1].duplicate, "the one duplicate a receiver may see, marked"


def test_gone_redirecting_and_inward_endpoints_are_disabled_alone(world: Any) -> None:
    store, config = world
    with receiving() as gone, receiving() as moved:
        first = hook(store, gone, "gone@example.org")
        gone.answers = [(410, 0.0)]
        second = hook(store, moved, "moved@example.org")
        moved.redirect_to = "http://169.254.169.254/latest/meta-data/"
        report = send_digests(store, config, now=NOW)
        again = send_digests(store, config, now=NOW)
    by = {(r.email, r.channel): r for r in report.results}
    assert by[("gone@example.org", first.key)].outcome == "rejected"
    assert "HTTP 410" in (by[("gone@example.org", first.key)].error or "")
    assert by[("moved@example.org", second.key)].outcome == "rejected", "a redirect is not followed"
    assert len(moved.received) == 1
    assert by[("gone@example.org", "email")].outcome == "sent"
    for email in ("gone@example.org", "moved@example.org"):
        assert store.subscribers.get(email).status == "active", "the reader is not bounced"
    assert store.endpoints.get(first.id).disabled and store.endpoints.get(second.id).disabled
    assert again.results == [] and len(gone.received) == 1, "a disabled endpoint gets nothing"
    counts = status_report(store, config)["deliveries"]  # what `digest status` shows
    assert counts == {"email": {"sent": 2}, "webhook": {"rejected": 2}}


def test_webhook_urls_must_be_public_unless_allowed(world: Any, make_config: Any) -> None:
    store, _ = world
    strict = make_config()
    for url in (
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "file:///etc/passwd",
        "ftp://example.org/x",
    ):
        with pytest.raises(InvalidInput, match="webhook URL refused"):
            check_webhook_url(url, strict)
    # Stored while allowed, then the setting changed: refused at connect, disabled.
    with receiving() as receiver:
        endpoint = hook(store, receiver, "inward@example.org")
        report = send_digests(store, strict, now=NOW)
    assert receiver.received == [], "no connection was made"
    [result] = [r for r in report.results if r.channel == endpoint.key]
    assert result.outcome == "rejected" and "127.0.0.1" in (result.error or "")


def test_channels_from_the_command_line(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = command_line(tmp_path, monkeypatch)
    (tmp_path / "digest.toml").write_text(
        '[storage]\nstate_dir = "state"\n[webhook]\nallow_private_addresses = true\n'
    )
    digest("init")
    digest("subscribers", "add", "r@example.org")
    listed = json.loads(digest("channels", "list", "--json"))
    assert [c["channel"] for c in listed] == ["email"], "everyone starts with email"
    out = digest(
        "channels", "add", "r@example.org", "webhook", "http://127.0.0.1:9/h", "--format", "slack"
    )
    assert "Signing secret" in out
    listed = json.loads(digest("channels", "list", "r@example.org", "--json"))
    assert [(c["kind"], c["format"]) for c in listed] == [("email", ""), ("webhook", "slack")]
    assert "secret" not in json.dumps(listed), "the secret is shown once, when added"
    digest("channels", "remove", "r@example.org", "email")
    hook_key = listed[1]["channel"]
    refused = digest("channels", "remove", "r@example.org", hook_key, ok=False)
    assert "keeps at least one channel" in refused
    assert "needs its URL" in digest("channels", "add", "r@example.org", "webhook", ok=False)
