"""Each reader's own top N: editions per show selection, over real SMTP (aiosmtpd)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from click.testing import CliRunner

import digest.jobs.edition as edition_module
from digest.cli import cli
from digest.core.models import selection_key
from digest.jobs import send_digests
from digest.jobs.edition import top_items
from digest.store import Store
from tests.support.seed import SCRIPTS, seed_insights
from tests.support.smtpserver import SmtpServer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = NOW.date().isoformat()


@pytest.fixture
def two_shows(store: Store, make_config: Any, smtp_server: SmtpServer) -> Any:
    config = make_config(smtp={"host": "127.0.0.1", "port": smtp_server.port, "security": "none"})
    seed_insights(store, config, show="Alpha Hour", scripts=SCRIPTS[:2])
    seed_insights(store, config, show="Beta Talk", scripts=SCRIPTS[2:])
    store.feeds.add("https://quiet.example/feed", NOW, title="Quiet Show")
    feeds = {f.title: f for f in store.feeds.list()}
    return store, config, feeds, smtp_server.mailbox


def shows_in(message: EmailMessage) -> set[str]:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return {show for show in ("Alpha Hour", "Beta Talk", "Quiet Show") if f"-- {show}" in text}


def test_each_reader_gets_only_their_shows_and_one_render_per_selection(
    two_shows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, config, feeds, mailbox = two_shows
    alpha, beta, quiet = (feeds[t].id for t in ("Alpha Hour", "Beta Talk", "Quiet Show"))
    for n in range(3):
        store.subscribers.add(f"alpha{n}@example.org", NOW, shows=(alpha,))
    store.subscribers.add("beta@example.org", NOW, shows=(beta,))
    store.subscribers.add("both@example.org", NOW, shows=(beta, alpha))
    store.subscribers.add("all@example.org", NOW)
    store.subscribers.add("quiet@example.org", NOW, shows=(quiet,))
    renders: list[int] = []
    real_render = edition_module.render_for_readers

    def counting(*args: Any, **kwargs: Any) -> Any:
        renders.append(1)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(edition_module, "render_for_readers", counting)
    report = send_digests(store, config, now=NOW)

    got = {str(m["To"]): shows_in(m) for m in mailbox.messages}
    assert got == {
        **{f"alpha{n}@example.org": {"Alpha Hour"} for n in range(3)},
        "beta@example.org": {"Beta Talk"},
        "both@example.org": {"Alpha Hour", "Beta Talk"},
        "all@example.org": {"Alpha Hour", "Beta Talk"},
    }, "every reader's email holds their shows only; the quiet show's reader gets none"
    assert [r.outcome for r in report.results if r.email == "quiet@example.org"] == [
        "nothing-to-send"
    ]
    # Alpha, Beta, both (the same edition as all shows' insights but its own key) and all.
    assert len(renders) == 4, "rendered once per distinct selection, not per reader"
    assert store.digests.get(DAY, str(alpha)) is not None
    assert store.digests.get(DAY, "all") is not None, "the archive's edition is always kept"
    for message in mailbox.messages:
        assert "/archive/feed.xml" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_an_insight_is_not_sent_twice_to_a_selection_but_is_new_to_another(
    two_shows: Any,
) -> None:
    store, config, feeds, mailbox = two_shows
    alpha, beta = feeds["Alpha Hour"].id, feeds["Beta Talk"].id
    store.subscribers.add("alpha@example.org", NOW, shows=(alpha,))
    send_digests(store, config, now=NOW)
    alpha_day1 = store.digests.get(DAY, str(alpha))
    all_day1 = store.digests.get(DAY, "all")
    assert alpha_day1 and all_day1 and alpha_day1.insight_ids

    later = NOW + timedelta(days=1)
    day2 = later.date().isoformat()
    send_digests(store, config, now=later)
    alpha_day2 = store.digests.get(day2, str(alpha))
    assert alpha_day2 is not None, "alpha's other insights fill the second day"
    assert not set(alpha_day2.insight_ids) & set(alpha_day1.insight_ids)
    assert len(mailbox.to("alpha@example.org")) == 2
    # Readers of both shows never had an edition: all of day 1's best are new to them.
    both = top_items(store, config, later, selection_key((alpha, beta)), day2)
    assert [i.insight.id for i in both] == list(all_day1.insight_ids)
    everyone = top_items(store, config, later, "all", day2)
    assert not {i.insight.id for i in everyone} & set(all_day1.insight_ids)


def test_pending_and_paused_readers_get_nothing(two_shows: Any) -> None:
    store, config, _, mailbox = two_shows
    reader = store.subscribers.add("paused@example.org", NOW)
    store.subscribers.set_status(reader.id, "paused")
    from digest.store.subscriber_repo import Preferences

    store.subscribers.pending("pending@example.org", Preferences(), NOW)
    store.subscribers.add("active@example.org", NOW)
    send_digests(store, config, now=NOW)
    assert [str(m["To"]) for m in mailbox.messages] == ["active@example.org"]


def test_cli_shows_each_readers_choices(two_shows: Any, tmp_path: Any, db_url: str) -> None:
    store, config, feeds, _ = two_shows
    runner = CliRunner()
    config_file = tmp_path / "digest.toml"
    config_file.write_text(
        f'[storage]\nstate_dir = "{config.state_dir}"\ndatabase_url = "{db_url}"\n'
    )
    alpha_url = feeds["Alpha Hour"].url

    def run(*args: str) -> Any:
        result = runner.invoke(cli, ["--config", str(config_file), *args])
        assert result.exit_code == 0, result.output
        return result

    run("subscribers", "add", "alpha@example.org", "--show", alpha_url)
    run("subscribers", "add", "all@example.org")
    bad = runner.invoke(
        cli,
        [
            "--config",
            str(config_file),
            "subscribers",
            "add",
            "x@example.org",
            "--show",
            "https://nope.example/feed",
        ],
    )
    assert bad.exit_code != 0 and "not one of the shows" in bad.output
    listed = {s["email"]: s for s in json.loads(run("subscribers", "list", "--json").output)}
    assert listed["alpha@example.org"]["shows"] == [alpha_url]
    assert listed["all@example.org"]["shows"] == []
    assert {s["status"] for s in listed.values()} == {"active"}
    assert "x@example.org" not in listed

    alpha_text = run("preview", "--subscriber", "alpha@example.org").output
    assert "Alpha Hour" in alpha_text and "Beta Talk" not in alpha_text
    everything = run("preview", "--subscriber", "all@example.org").output
    assert "Beta Talk" in everything
    preview_json = json.loads(
        run("preview", "--subscriber", "alpha@example.org", "--format", "json").output
    )
    assert preview_json["insights"] and all(
        i["show_title"] == "Alpha Hour" for i in preview_json["insights"]
    )

    from digest.store.subscriber_repo import Preferences

    store.subscribers.pending("new@example.org", Preferences(), NOW)
    status = json.loads(run("status", "--json").output)
    assert status["pending_signups"] == 1
    assert "1 sign-up(s) waiting for confirmation" in run("status").output


def test_unconfirmed_sign_ups_are_forgotten_after_a_week(store: Store) -> None:
    from digest.store.subscriber_repo import Limits, Preferences

    def request(address: str, now: datetime) -> None:
        limits = Limits(
            "c", 20, now - timedelta(hours=1), 3, now - timedelta(days=1), now - timedelta(days=30)
        )
        assert (
            store.subscribers.request_signup(address, Preferences(), limits, now, now).outcome
            == "mail"
        )

    week_ago = NOW - timedelta(days=8)
    for address in ("old@example.org", "again@example.org"):
        request(address, week_ago)
    request("again@example.org", NOW - timedelta(days=1))  # signed up again: still waiting
    store.subscribers.add("active@example.org", week_ago)
    store.subscribers.forget_signups(NOW - timedelta(days=7))
    assert {s.email for s in store.subscribers.list()} == {
        "again@example.org",
        "active@example.org",
    }
    assert store.subscribers.mails_since("old@example.org", week_ago) == 0
