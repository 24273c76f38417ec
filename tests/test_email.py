"""The daily email: rendering, delivery to a real SMTP server on loopback, exactly once."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.jobs.send import send_digests
from digest.store import Store
from tests.support.seed import seed_insights
from tests.support.smtpserver import SmtpServer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 07:00 has passed in UTC
TODAY = "2026-11-23"


@pytest.fixture
def mail(store: Store, make_config: Any, smtp_server: SmtpServer) -> Any:
    """A store with extracted insights and two subscribers, and an SMTP config for the server."""
    config: Config = make_config(
        smtp={"host": "127.0.0.1", "port": smtp_server.port, "security": "none"}
    )
    seed_insights(store, config)
    for address in ("alice@example.org", "bob@example.org"):
        store.subscribers.add(address, utcnow())
    return store, config, smtp_server.mailbox


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_each_subscriber_gets_one_personal_message_with_both_parts_and_headers(mail: Any) -> None:
    store, config, mailbox = mail
    report = send_digests(store, config, now=NOW)
    assert report.count("sent") == 2
    assert sorted(m["To"] for m in mailbox.messages) == ["alice@example.org", "bob@example.org"]
    alice = store.subscribers.get("alice@example.org")
    [message] = mailbox.to("alice@example.org")
    assert message["From"] == "Podcast Digest <digest@localhost>"
    assert message["Subject"].startswith("Podcast Digest, Mon 23 Nov: ")
    assert message["Message-ID"].endswith("@localhost>") and message["Date"]
    assert message["List-Unsubscribe"] == (
        f"<mailto:digest@localhost?subject=unsubscribe%20{alice.unsubscribe_token}>, "
        f"<http://digest.example.org/unsubscribe/{alice.unsubscribe_token}>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert text.startswith("We scan new podcasts and send you the top 5 insights daily.")
    assert all(len(line) <= 72 or "://" in line for line in text.splitlines()), "wrapped at 72"
    assert len(re.findall(r"^\d\. ", text, re.MULTILINE)) == 5
    assert alice.unsubscribe_token in text and alice.unsubscribe_token in html
    bob = store.subscribers.get("bob@example.org")
    assert bob.unsubscribe_token not in html, "links are personal"
    assert html.count('data-insight="') == 5
    assert "#t=" in html and "https://show.example/" in html
    assert "<script" not in html and "<img" not in html and "<link" not in html
    assert 'style="' in html and "<style" in html, (
        "CSS inlined; @media kept for clients that use it"
    )
    assert len(html.encode()) < 102 * 1024, "under Gmail's clipping limit"


def test_a_second_send_for_the_same_date_sends_nothing(mail: Any) -> None:
    store, config, mailbox = mail
    send_digests(store, config, now=NOW)
    again = send_digests(store, config, now=NOW)
    assert again.results == []
    assert len(mailbox.messages) == 2
    assert {d.status for d in store.digests.deliveries(TODAY)} == {"sent"}


def test_a_dropped_connection_is_reopened_within_the_batch(mail: Any) -> None:
    store, config, mailbox = mail
    store.subscribers.add("carol@example.org", utcnow())
    mailbox.hang_up_after, mailbox.hang_ups_left = 1, 1
    report = send_digests(store, config, now=NOW)
    assert report.count("sent") == 3
    assert mailbox.hang_ups == 1 and mailbox.connections == 2
    assert sorted(m["To"] for m in mailbox.messages) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]


def test_a_server_that_keeps_dropping_loses_nothing_and_doubles_nothing(mail: Any) -> None:
    store, config, mailbox = mail
    store.subscribers.add("carol@example.org", utcnow())
    mailbox.hang_up_after = 1  # every connection after the first message is dropped
    first = send_digests(store, config, now=NOW)
    assert first.count("sent") == 1 and first.count("failed") == 2
    mailbox.hang_up_after = None  # the server recovers; the next run sends what is missing
    second = send_digests(store, config, now=NOW)
    assert second.count("sent") == 2
    assert sorted(m["To"] for m in mailbox.messages) == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    retried = next(m for m in mailbox.messages if m["To"] == "bob@example.org")
    ledger = {d.subscriber_id: d for d in store.digests.deliveries(TODAY)}
    bob = store.subscribers.get("bob@example.org")
    assert ledger[bob.id].message_id == retried["Message-ID"] and ledger[bob.id].attempts == 2


def test_permanent_refusal_marks_the_address_and_temporary_is_retried(mail: Any) -> None:
    store, config, mailbox = mail
    store.subscribers.add("carol@example.org", utcnow())
    mailbox.refuse["alice@example.org"] = "550 5.1.1 no such mailbox"
    mailbox.refuse["carol@example.org"] = "451 4.7.1 greylisted, try later"
    report = send_digests(store, config, now=NOW)
    outcomes = {r.email: r.outcome for r in report.results}
    assert outcomes == {
        "alice@example.org": "rejected",
        "bob@example.org": "sent",
        "carol@example.org": "failed",
    }
    assert store.subscribers.get("alice@example.org").status == "bounced"
    mailbox.refuse.clear()
    later = send_digests(store, config, now=NOW)
    assert {r.email: r.outcome for r in later.results} == {"carol@example.org": "sent"}
    assert [m["To"] for m in mailbox.messages] == ["bob@example.org", "carol@example.org"]


def test_an_unreachable_server_stops_the_batch_and_the_next_run_sends_everything(
    mail: Any, smtp_server: SmtpServer
) -> None:
    store, config, _mailbox = mail
    smtp_server.stop()
    report = send_digests(store, config, now=NOW)
    assert [r.outcome for r in report.results] == ["failed", "not-attempted"]
    assert "check [smtp] host" in (report.results[0].error or "")
    restarted = SmtpServer()
    try:
        moved = replace(config, smtp=replace(config.smtp, port=restarted.port))
        assert send_digests(store, moved, now=NOW).count("sent") == 2
        assert len(restarted.mailbox.messages) == 2
    finally:
        restarted.stop(hold_port=False)


def test_without_an_smtp_host_messages_go_to_the_outbox(store: Store, make_config: Any) -> None:
    config = make_config()
    seed_insights(store, config)
    store.subscribers.add("alice@example.org", utcnow())
    report = send_digests(store, config, now=NOW)
    [path] = report.outbox
    assert path == config.state_dir / "outbox" / TODAY / "alice@example.org.eml"
    message = message_from_bytes(path.read_bytes(), policy=default)
    assert message["To"] == "alice@example.org" and message["List-Unsubscribe-Post"]
    assert send_digests(store, config, now=NOW).outbox == []


def test_subscribers_get_their_own_date_at_their_own_hour(store: Store, make_config: Any) -> None:
    config = make_config()
    seed_insights(store, config)
    store.subscribers.add("tokyo@example.org", utcnow(), timezone="Asia/Tokyo", send_time="07:00")
    store.subscribers.add(
        "la@example.org", utcnow(), timezone="America/Los_Angeles", send_time="07:00"
    )
    # 14:00 UTC: 23:00 in Tokyo (23 Nov, due), 06:00 in Los Angeles (not yet).
    early = send_digests(store, config, now=datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    assert [(r.email, r.date) for r in early.results] == [("tokyo@example.org", "2026-11-23")]
    # 23:30 UTC: 08:30 on 24 Nov in Tokyo (due again, new date), 15:30 on 23 Nov in LA.
    late = send_digests(store, config, now=datetime(2026, 11, 23, 23, 30, tzinfo=UTC))
    assert sorted((r.email, r.date, r.outcome) for r in late.results) == [
        ("la@example.org", "2026-11-23", "sent"),
        ("tokyo@example.org", "2026-11-24", "sent"),
    ]
    outbox = config.state_dir / "outbox"
    la = message_from_bytes(
        (outbox / "2026-11-23" / "la@example.org.eml").read_bytes(), policy=default
    )
    tokyo = message_from_bytes(
        (outbox / "2026-11-23" / "tokyo@example.org.eml").read_bytes(), policy=default
    )
    tokyo_next = message_from_bytes(
        (outbox / "2026-11-24" / "tokyo@example.org.eml").read_bytes(), policy=default
    )
    assert la["Subject"] == tokyo["Subject"], "one frozen digest per date"
    assert tokyo_next["Subject"].startswith("Podcast Digest, Tue 24 Nov")
    assert send_digests(store, config, now=datetime(2026, 11, 23, 23, 45, tzinfo=UTC)).results == []


def test_sent_insights_are_frozen_and_never_selected_again(store: Store, make_config: Any) -> None:
    config = make_config()
    seed_insights(store, config)
    store.subscribers.add("alice@example.org", utcnow())
    send_digests(store, config, now=NOW)
    frozen = store.digests.get(TODAY)
    assert frozen is not None and len(frozen.insight_ids) == 5
    tomorrow = send_digests(store, config, date="2026-11-24", now=NOW)
    [path] = tomorrow.outbox
    later_ids = set(store.digests.get("2026-11-24").insight_ids)  # type: ignore[union-attr]
    assert later_ids and not later_ids & set(frozen.insight_ids)
    assert path.name == "alice@example.org.eml"


def test_dry_run_builds_but_neither_sends_nor_records(mail: Any) -> None:
    store, config, mailbox = mail
    report = send_digests(store, config, now=NOW, dry_run=True)
    assert report.count("dry-run") == 2
    assert (
        mailbox.messages == []
        and store.digests.deliveries(TODAY) == []
        and store.digests.get(TODAY) is None
    )


def test_hostile_titles_are_escaped_in_html(store: Store, make_config: Any) -> None:
    config = make_config()
    seed_insights(
        store,
        config,
        show="<script>alert('x')</script> & Friends",
        scripts=("kimi-k2", "qwen3.5-122b-a10b"),
    )
    store.subscribers.add("alice@example.org", utcnow())
    [path] = send_digests(store, config, now=NOW).outbox
    message = message_from_bytes(path.read_bytes(), policy=default)
    text, html = parts(message)  # type: ignore[arg-type]
    assert (
        "<script>" not in html and "&lt;script&gt;alert('x')&lt;/script&gt; &amp; Friends" in html
    )
    assert "<script>alert('x')</script> & Friends" in text, "plain text shows the title as is"
