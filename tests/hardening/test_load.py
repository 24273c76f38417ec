"""A simulated week at scale: 1,000 feeds, 50 new episodes a day, 10,000 subscribers.

Loopback only and bounded: episodes carry publisher transcripts (Whisper's cost is a
benchmark's business), mail goes to a transport that counts what it is handed.
What must hold: every day's digest reaches every subscriber once, memory does not
grow from day to day, the database stays small and holds no media, and `digest
status` answers from aggregate queries. The figures go to docs/reliability.md.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from click.testing import CliRunner

from bench.common import current_rss_mb
from digest import jobs
from digest.cli import cli
from digest.delivery.channels.email import EmailChannel
from digest.delivery.message import Outgoing
from digest.jobs.extraction import Extractor
from digest.jobs.transcription import Transcription
from digest.store import Store
from digest.store.schema import subscribers
from tests.support.httpserver import LoopbackServer, Route
from tests.support.seed import CORPUS, SCRIPTS

pytestmark = pytest.mark.slow
FEEDS, NEW_PER_DAY, DAYS, SUBSCRIBERS = 1_000, 50, 7, 10_000


class CountingTransport:
    """Stands in for the SMTP server: the load is on our side of the wire."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}

    def send(self, message: Outgoing) -> None:
        self.sent[message.recipient] = self.sent.get(message.recipient, 0) + 1

    def close(self) -> None:
        pass


def publish(server: LoopbackServer, feed: int, episodes: list[tuple[int, Any]]) -> None:
    items = "".join(
        f"<item><title>Show {feed} day {day}</title><guid>{feed}-{day}</guid>"
        f"<pubDate>{format_datetime(when)}</pubDate>"
        f"<enclosure url='{server.url(f'/a/{feed}-{day}.mp3')}' type='audio/mpeg'/>"
        f"<podcast:transcript url='{server.url(f'/t/{feed % 4}.txt')}' type='text/plain'/>"
        "</item>"
        for day, when in episodes
    )
    body = (
        "<rss version='2.0' xmlns:podcast='https://podcastindex.org/namespace/1.0'><channel>"
        f"<title>Show {feed}</title>{items}</channel></rss>"
    ).encode()
    server.routes[f"/f/{feed}.xml"] = Route(body, etag=f'"{feed}-{len(episodes)}"')


def test_a_week_of_1000_feeds_and_10000_subscribers(
    http_server: LoopbackServer, make_config: Any
) -> None:
    config = make_config(digest={"send_time": "00:00"}, feeds={"concurrency": 16})
    store = Store(config.database_url)
    scripts = [CORPUS / f"{name}.txt" for name in SCRIPTS]
    for n, path in enumerate(scripts):  # four transcripts, shared by every show
        words = path.read_text().split()
        http_server.routes[f"/t/{n}.txt"] = Route(
            " ".join(words[:400]).encode(), content_type="text/plain"
        )
    start = jobs.utcnow() - timedelta(days=DAYS)
    published: dict[int, list[tuple[int, Any]]] = {f: [] for f in range(FEEDS)}
    for feed in range(FEEDS):
        publish(http_server, feed, [])
        store.feeds.add(http_server.url(f"/f/{feed}.xml"), start - timedelta(days=1))
    with store.engine.begin() as conn:  # setup only: 10,000 rows in one statement
        conn.execute(
            subscribers.insert(),
            [{"email": f"r{n}@example.org", "unsubscribe_token": secrets.token_urlsafe(24),
              "created_at": start, "status": "active"} for n in range(SUBSCRIBERS)],
        )  # fmt: skip
    jobs.poll_feeds(store, config, now=start - timedelta(hours=1))  # first poll: nothing yet

    figures: list[dict[str, float]] = []
    for day in range(DAYS):
        now = start + timedelta(days=day, hours=6)
        for feed in range(day * NEW_PER_DAY, (day + 1) * NEW_PER_DAY):
            published[feed % FEEDS].append((day, now - timedelta(hours=1)))
            publish(http_server, feed % FEEDS, published[feed % FEEDS])
        polled = jobs.poll_feeds(store, config, now=now)
        assert sum(len(r.new_episode_ids) for r in polled) == NEW_PER_DAY
        assert sum(r.outcome == "not_modified" for r in polled) == FEEDS - NEW_PER_DAY
        with Transcription(store, config) as transcription:
            done = [transcription.transcribe(e) for e in store.episodes.processable(max_attempts=3)]
        assert [r.outcome for r in done] == ["transcribed"] * NEW_PER_DAY
        extractor = Extractor(store, config)
        extracted = [extractor.extract(e) for e in extractor.pending()]
        assert all(r.outcome == "extracted" for r in extracted)
        transport = CountingTransport()
        channel = EmailChannel(config, transport)
        report = jobs.send_digests(store, config, now=now, channel=channel)
        assert report.count("sent") == SUBSCRIBERS, "everyone, once a day"
        assert len(transport.sent) == SUBSCRIBERS and set(transport.sent.values()) == {1}
        assert not any(r.path.startswith("/a/") for r in http_server.requests)
        http_server.requests.clear()  # the test server's own log is not the pipeline's memory
        figures.append({"day": day, "rss_mb": current_rss_mb()})

    growth = figures[-1]["rss_mb"] - figures[1]["rss_mb"]
    # docs/reliability.md promises these bounds: flat memory (under 20 MB of growth from
    # day 2), a small database (under 40 MB), `digest status` in under a second.
    assert growth < 20, f"memory grew {growth:.0f} MB over the week: {figures}"
    state = config.state_dir
    db_mb = sum(p.stat().st_size for p in state.glob("digest.db*")) / 2**20
    assert db_mb < 40, f"the state database is {db_mb:.0f} MB after a week"
    assert not any((state / "media").glob("*")) if (state / "media").exists() else True

    config_file = state.parent / "digest.toml"
    config_file.write_text(f'[storage]\nstate_dir = "{state}"\n')
    started = time.perf_counter()
    status = CliRunner().invoke(cli, ["--config", str(config_file), "status", "--json"])
    status_s = time.perf_counter() - started
    assert status.exit_code == 0, status.output
    assert f'"total": {FEEDS}' in status.output and f'"active": {SUBSCRIBERS}' in status.output
    assert status_s < 1.0, f"`digest status` took {status_s:.2f} s on a week of state"
    print(
        f"\nload: RSS by day {[round(f['rss_mb']) for f in figures]} MB, database {db_mb:.1f} MB, "
        f"`digest status` {status_s:.2f} s"
    )
