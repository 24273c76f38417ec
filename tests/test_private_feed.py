"""A reader's private feed: RSS of their own editions (shows, topics, cadence) at a link
only they hold, read by feedparser over real HTTP; nothing about anyone else in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import httpx

from digest.core.topics import parse_topics
from digest.delivery.channels.feed import feed_url
from digest.jobs import send_digests
from digest.store import Store
from tests.support.seed import SCRIPTS, seed_insights
from tests.support.web import serve_web

DATABASES = ("sqlite",)  # the feed, not the database
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_feed_reader_gets_their_editions_and_no_one_elses(store: Store, make_config: Any) -> None:
    config = make_config(digest={"insights": 2}, voice={"enabled": False})  # text only
    seed_insights(store, config, show="Alpha Hour", scripts=SCRIPTS[:2])
    seed_insights(store, config, show="Beta Talk", scripts=SCRIPTS[2:])
    alpha = next(f for f in store.feeds.list() if f.title == "Alpha Hour")
    reader = store.subscribers.add("feedonly@example.org", NOW, shows=(alpha.id,))
    feed = store.endpoints.add(reader.id, "feed", NOW)
    email = next(e for e in store.endpoints.of([reader.id])[reader.id] if e.kind == "email")
    store.endpoints.remove(reader.id, email)  # a feed reader needs no email at all
    other = store.subscribers.add("other@example.org", NOW, topics=parse_topics("gibberish"))
    other_feed = store.endpoints.add(other.id, "feed", NOW)
    first = send_digests(store, config, now=NOW)
    second = send_digests(store, config, now=NOW + timedelta(days=1))
    again = send_digests(store, config, now=NOW + timedelta(days=1))
    mine = [r for r in first.results + second.results if r.email == reader.email]
    assert [(r.channel, r.outcome) for r in mine] == [(feed.key, "sent")] * 2
    assert not list((config.state_dir / "outbox").glob("*/feedonly@*")), "no email"
    assert again.results == [], "published once per edition"

    with serve_web(store, config) as base, httpx.Client(base_url=base) as client:
        url = feed_url(base, feed)
        answer = client.get(url.removeprefix(base))
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/rss+xml")
        assert answer.headers["cache-control"].startswith("private")
        parsed = feedparser.parse(answer.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.version == "rss20"
        days = [NOW.date().isoformat(), (NOW + timedelta(days=1)).date().isoformat()]
        frozen = [store.digests.get(d, reader.selection) for d in reversed(days)]
        assert [e.title for e in parsed.entries] == [f.subject for f in frozen if f], "newest first"
        for entry, edition in zip(parsed.entries, frozen, strict=True):
            assert edition is not None
            for item in store.insights.by_ids(edition.insight_ids):
                assert item.insight.text.split(".")[0][:40] in entry.summary
                assert "Alpha Hour" in entry.summary and "Beta Talk" not in entry.summary
            assert entry.id.startswith(feed_url(config.web.base_url, feed)), "ids from base_url"
        assert reader.email not in answer.text and other.email not in answer.text
        theirs = client.get(feed_url(base, other_feed).removeprefix(base))
        assert theirs.status_code == 200 and theirs.text != answer.text
        for bad in ("/feed/" + "A" * 43 + ".xml", "/feed/../archive.xml", "/feed/x.xml"):
            assert client.get(bad).status_code == 404, bad
        store.subscribers.set_status(reader.id, "unsubscribed")
        assert client.get(url.removeprefix(base)).status_code == 404, "gone with the reader"
