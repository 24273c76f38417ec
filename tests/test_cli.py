"""The `digest` command line, in process (CliRunner) and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from tests.conftest import FIXTURES, fixture_bytes
from tests.support.httpserver import LoopbackServer, Route


@pytest.fixture
def digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `digest ...` with a config whose state lives in tmp_path."""
    config = tmp_path / "digest.toml"
    config.write_text('[storage]\nstate_dir = "state"\n[feeds]\nallow_private_addresses = true\n')
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def test_init_sample_then_poll_finds_the_three_sample_episodes(digest: Any, tmp_path: Path) -> None:
    out = digest("init", "--sample").output
    assert "Added the sample feed" in out
    assert (tmp_path / "state" / "digest.db").exists()
    assert digest("init", "--sample").output.count("Added") == 0, "init is idempotent"
    poll = digest("poll").output
    assert "3 new episode(s), 0 failed" in poll
    episodes = json.loads(digest("episodes", "--json").output)
    assert len(episodes) == 3
    assert {e["status"] for e in episodes} == {"pending"}
    assert {"id", "feed_url", "title", "published_at", "status", "error"} <= set(episodes[0])
    assert "0 new episode(s)" in digest("poll").output
    assert len(json.loads(digest("episodes", "--json").output)) == 3


def test_run_without_feeds_says_what_to_do(digest: Any) -> None:
    result = digest("run", ok=False)
    assert result.exit_code == 1
    assert "digest feeds add URL" in result.output


def test_feeds_add_list_remove(digest: Any, http_server: LoopbackServer) -> None:
    http_server.routes["/f.xml"] = Route(fixture_bytes("feeds/atom.xml"))
    url = http_server.url("/f.xml")
    digest("feeds", "add", url)
    assert "already added" in digest("feeds", "add", url, ok=False).output
    assert "must start with http" in digest("feeds", "add", "ftp://x.example/f", ok=False).output
    for local in ("file:///etc/passwd", "/etc/passwd", "state/../digest.toml"):
        refused = digest("feeds", "add", local, ok=False).output
        assert "[feeds] allow_local_files = true" in " ".join(refused.split()), refused
    digest("poll")
    [feed] = json.loads(digest("feeds", "list", "--json").output)
    assert feed["url"] == url and feed["title"] == "Atomic Audio"
    assert {
        "url",
        "title",
        "last_polled_at",
        "last_error",
        "consecutive_failures",
        "warnings",
    } <= set(feed)
    assert feed["warnings"] == [], "a clean feed has none"
    assert feed["last_polled_at"] is not None
    digest("feeds", "remove", url)
    assert json.loads(digest("feeds", "list", "--json").output) == []
    assert "no feed" in digest("feeds", "remove", url, ok=False).output


def test_broken_feed_shows_in_feeds_list_and_status(
    digest: Any, http_server: LoopbackServer
) -> None:
    http_server.routes["/ok.xml"] = Route(fixture_bytes("feeds/atom.xml"))
    http_server.routes["/broken.xml"] = Route(status=500, body=b"down")
    digest("feeds", "add", http_server.url("/ok.xml"))
    digest("feeds", "add", http_server.url("/broken.xml"))
    poll = json.loads(digest("poll", "--json").output)
    assert sorted(r["outcome"] for r in poll) == ["failed", "updated"]
    feeds = {f["url"]: f for f in json.loads(digest("feeds", "list", "--json").output)}
    broken = feeds[http_server.url("/broken.xml")]
    assert broken["consecutive_failures"] == 1 and "HTTP 500" in broken["last_error"]
    status = digest("status").output
    assert "1 failing" in status and "HTTP 500" in status
    as_json = json.loads(digest("status", "--json").output)
    assert as_json["failing_feeds"][0]["url"] == http_server.url("/broken.xml")
    # The fixture's items are dated 2026-11-20, older than the 48 h lookback: a new
    # feed's first poll records them as back catalogue.
    assert as_json["episodes"] == {"skipped": 2}


def test_opml_import_and_export_round_trip(digest: Any) -> None:
    out = digest("feeds", "import", str(FIXTURES / "subscriptions.opml")).output
    assert "Imported 2 new feed(s)" in out
    assert (
        "Imported 0 new feed(s)"
        in digest("feeds", "import", str(FIXTURES / "subscriptions.opml")).output
    )
    exported = digest("feeds", "export").output
    assert exported.startswith('<?xml version="1.0"')
    assert 'xmlUrl="https://gridtalk.example/feed.xml"' in exported
    assert 'xmlUrl="https://atomic.example/atom"' in exported


def test_an_opml_file_listing_a_local_file_imports_nothing(digest: Any, tmp_path: Path) -> None:
    opml = tmp_path / "sneaky.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline xmlUrl="https://ok.example/feed.xml"/>'
        '<outline xmlUrl="file:///etc/passwd"/></body></opml>'
    )
    refused = " ".join(digest("feeds", "import", str(opml), ok=False).output.split())
    assert "nothing imported" in refused and "file:///etc/passwd" in refused
    assert "[feeds] allow_local_files = true" in refused
    assert json.loads(digest("feeds", "list", "--json").output) == []


def test_local_feed_files_are_accepted_when_the_setting_allows(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text('[storage]\nstate_dir = "state"\n[feeds]\nallow_local_files = true\n')
    feed = tmp_path / "feed.xml"
    feed.write_bytes(fixture_bytes("feeds/atom.xml"))
    result = CliRunner().invoke(cli, ["--config", str(config), "feeds", "add", str(feed)])
    assert result.exit_code == 0 and feed.resolve().as_uri() in result.output.replace("\n", "")


def test_import_of_a_non_opml_file_is_refused(digest: Any) -> None:
    result = digest("feeds", "import", str(FIXTURES / "feeds" / "atom.xml"), ok=False)
    assert result.exit_code == 1 and "is not OPML" in result.output


def test_subscribers_are_validated_by_syntax(digest: Any) -> None:
    bad = digest("subscribers", "add", "bob@@example", ok=False)
    assert bad.exit_code == 1
    assert "'bob@@example' is not a valid email address" in bad.output
    digest("subscribers", "add", "alice@example.org", "--timezone", "Asia/Tokyo")
    assert (
        "unknown timezone"
        in digest("subscribers", "add", "c@example.org", "--timezone", "Nowhere/X", ok=False).output
    )
    assert (
        "HH:MM"
        in digest("subscribers", "add", "c@example.org", "--send-time", "25:00", ok=False).output
    )
    [alice] = json.loads(digest("subscribers", "list", "--json").output)
    assert (alice["email"], alice["timezone"], alice["status"]) == (
        "alice@example.org",
        "Asia/Tokyo",
        "active",
    )
    assert "unsubscribe_token" not in alice, "tokens are secrets; lists do not leak them"
    digest("subscribers", "remove", "alice@example.org")
    assert json.loads(digest("subscribers", "list", "--json").output) == []


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[feeds]\npoll_every = 5\n")
    proc = subprocess.run(
        [sys.executable, "-m", "digest.cli", "--config", str(bad), "status"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"Error: {bad}: unknown setting 'poll_every' in [feeds]; known: poll_interval_minutes, "
        "allow_private_addresses, allow_local_files, lookback_hours, timeout_seconds, max_feed_bytes, concurrency, "
        "alert_after_failures"
    ]


@pytest.mark.slow
def test_run_transcribes_the_sample_and_transcript_prints_it(digest: Any, tmp_path: Path) -> None:
    digest("init", "--sample")
    out = digest("run").output
    assert "Processed 3 episode(s): 3 completed, 0 failed." in out
    episodes = json.loads(digest("episodes", "--json").output)
    assert {(e["status"], e["transcript_source"], e["transcript_engine"]) for e in episodes} == {
        ("extracted", "whisper", "faster-whisper")
    }
    pipeline = next(e for e in episodes if e["title"] == "Training is a data pipeline")
    text = digest("transcript", pipeline["id"][:8]).output  # a unique prefix is enough
    assert text.startswith("[00:00:0")
    assert "pipeline" in text.lower()
    vtt = digest("transcript", pipeline["id"], "--format", "vtt").output
    assert vtt.startswith("WEBVTT") and " --> " in vtt
    data = json.loads(digest("transcript", pipeline["id"], "--format", "json").output)
    assert data["engine"] == "faster-whisper" and data["segments"][0]["start"] >= 0
    assert (tmp_path / "state" / "transcripts" / f"{pipeline['id']}.json").exists()
    assert not list((tmp_path / "state" / "media").iterdir())
    # Readers' addresses and tokens stay private to this user, whatever the umask.
    state = tmp_path / "state"
    [mail] = (state / "outbox").rglob("*.eml")
    folders = [state, state / "outbox", mail.parent, state / "media", state / "transcripts"]
    files = [state / "digest.db", state / "digest.db-wal", mail, state / "digest.lock"]
    files += list((state / "transcripts").iterdir())
    assert {oct(p.stat().st_mode & 0o777) for p in folders} == {"0o700"}, folders
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}, files
    again = digest("run").output
    assert "0 new episode(s)" in again and "Processed 0 episode(s)" in again
    # The offline digest of the bundled sample reads as an editor's: each insight names
    # its show and speaker, whole sentences, no opener leaning on what the reader never
    # saw, nothing Whisper doubted.
    from digest.insights.grounding import dangling_opener, doubtful_quote, starts_mid_sentence
    from digest.store import Store

    with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
        episodes_stored = store.episodes.list()
        assert len(episodes_stored) == 3
        for episode in episodes_stored:
            stored = store.transcripts.get(episode.id)
            assert stored is not None
            insights = store.insights.for_episode(episode.id)
            assert insights, f"{episode.title}: the offline backend found something to say"
            for insight in insights:
                # Whose view it is: the sample feed's sole podcast:person is its host.
                assert insight.text.startswith("On Model Minds (sample), host Ada Quinn argues: ")
                assert insight.text.endswith(insight.quote), "the passage itself is verbatim"
                assert not starts_mid_sentence(insight.quote), insight.quote
                assert not dangling_opener(insight.quote), insight.quote
                assert not doubtful_quote(stored.transcript, insight.start_seconds, insight.quote)


def test_transcript_of_an_untranscribed_episode_says_what_to_do(
    digest: Any, http_server: LoopbackServer
) -> None:
    digest("init", "--sample")
    digest("poll")
    episode = json.loads(digest("episodes", "--json").output)[0]
    result = digest("transcript", episode["id"], ok=False)
    assert f"digest process --episode {episode['id']}" in result.output
    assert "no episode" in digest("transcript", "ffffffffffff", ok=False).output


def test_preview_json_is_the_public_contract(digest: Any, tmp_path: Path) -> None:
    from digest.core.config import load_config
    from digest.store import Store
    from tests.support.seed import seed_insights

    digest("init")
    config = load_config(str(tmp_path / "digest.toml"))
    with Store(config.database_url) as store:  # the data the contract is about, made directly
        seed_insights(store, config)
    data = json.loads(digest("preview", "--format", "json").output)
    assert set(data) == {"date", "insights"}
    assert len(data["insights"]) == 5
    fields = {
        "text",
        "quote",
        "start_seconds",
        "episode_title",
        "show_title",
        "episode_url",
        "audio_url",
        "prompt_version",
    }
    assert all(set(i) == fields for i in data["insights"])
    titles = [i["episode_title"] for i in data["insights"]]
    assert max(titles.count(t) for t in titles) <= 2, "at most two insights per episode"
    first = data["insights"][0]
    assert first["show_title"] == "Model Minds" and first["audio_url"].endswith(".mp3")
    assert first["episode_url"].startswith("https://show.example/")
    text = digest("preview").output
    assert text.startswith("Subject: Podcast Digest, ")
    assert "\n\nWe scan new podcasts and send you the top 5 insights daily.\n" in text
    assert first["text"][:40] in " ".join(text.split())
    html = digest("preview", "--format", "html").output
    assert html.lstrip().startswith("<!DOCTYPE html>") and "#t=" in html
    assert "must be YYYY-MM-DD" in digest("preview", "--date", "tomorrow", ok=False).output


def test_status_reports_llm_tokens_and_estimated_cost_per_day(digest: Any, tmp_path: Path) -> None:
    from digest.core.clock import utcnow
    from digest.store import Store

    digest("init")
    with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
        calls = [
            {"prompt_tokens": 12_000, "completion_tokens": 800, "latency_ms": 900, "outcome": "ok"}
        ] * 2
        store.insights.record_calls(None, "gpt-4o-mini", "v1", calls, utcnow())
        store.insights.record_calls(None, "local-llama", "v1", calls[:1], utcnow())
    usage = {u["model"]: u for u in json.loads(digest("status", "--json").output)["llm_usage"]}
    assert usage["gpt-4o-mini"]["calls"] == 2 and usage["gpt-4o-mini"]["prompt_tokens"] == 24_000
    assert usage["gpt-4o-mini"]["cost_usd"] == pytest.approx(2 * (12_000 * 0.15 + 800 * 0.60) / 1e6)
    assert usage["local-llama"]["cost_usd"] is None, "no price configured: no invented cost"
    text = " ".join(digest("status").output.split())  # the console wraps long lines
    assert "extraction gpt-4o-mini: 2 call(s), 24,000 in / 1,600 out tokens, ~$0.0046" in text
    assert "unknown cost" in text


def test_a_recovered_feed_polls_and_lists_its_warnings(
    digest: Any, http_server: LoopbackServer
) -> None:
    fixture = FIXTURES / "realworld" / "podcastparser" / "itunes_no_xmlns.rss"
    http_server.routes["/f.rss"] = Route(fixture.read_bytes())
    digest("feeds", "add", http_server.url("/f.rss"))
    [result] = json.loads(digest("poll", "--json").output)
    assert result["outcome"] == "updated" and result["error"] is None
    [feed] = json.loads(digest("feeds", "list", "--json").output)
    assert feed["consecutive_failures"] == 0
    assert any("itunes:" in w for w in feed["warnings"]), feed["warnings"]


def test_a_truncated_feed_shows_as_failing_with_the_parsers_reason(
    digest: Any, http_server: LoopbackServer
) -> None:
    http_server.routes["/cut.xml"] = Route(b'<rss version="2.0"><channel><title>Half a feed')
    digest("feeds", "add", http_server.url("/cut.xml"))
    poll = json.loads(digest("poll", "--json").output)
    assert [r["outcome"] for r in poll] == ["failed"]
    [feed] = json.loads(digest("feeds", "list", "--json").output)
    assert feed["consecutive_failures"] == 1
    assert (
        "malformed XML at line 1," in feed["last_error"]
        and "no complete item" in feed["last_error"]
    )
    assert "1 failing" in digest("status").output
