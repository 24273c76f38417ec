"""Polling real feeds over HTTP into a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from digest import jobs
from digest.store import Store
from tests.conftest import fixture_bytes
from tests.support.httpserver import LoopbackServer, Route

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def add(store: Store, server: LoopbackServer, path: str, route: Route) -> str:
    server.routes[path] = route
    url = server.url(path)
    store.feeds.add(url, NOW)
    return url


def test_second_poll_is_conditional_and_answered_304(
    store: Store, http_server: LoopbackServer, make_config: Any
) -> None:
    url = add(
        store, http_server, "/grid.xml", Route(fixture_bytes("feeds/rss_itunes.xml"), etag='"v1"')
    )
    config = make_config()

    first = jobs.poll_feeds(store, config, now=NOW)
    assert [(r.outcome, r.new_episodes, r.skipped_episodes) for r in first] == [("updated", 2, 2)]
    second = jobs.poll_feeds(store, config, now=NOW + timedelta(minutes=30))
    assert [r.outcome for r in second] == ["not_modified"]

    requests = http_server.seen("/grid.xml")
    assert len(requests) == 2
    assert "if-none-match" not in requests[0].headers
    assert requests[1].headers["if-none-match"] == '"v1"'
    assert len(store.episodes.list()) == 4, "a re-poll creates no duplicates"
    assert store.feeds.get(url).title == "Grid Talk"


def test_last_modified_is_sent_back_as_if_modified_since(
    store: Store, http_server: LoopbackServer, make_config: Any
) -> None:
    stamp = "Fri, 20 Nov 2026 08:00:00 GMT"
    add(
        store,
        http_server,
        "/f.xml",
        Route(fixture_bytes("feeds/atom.xml"), headers={"Last-Modified": stamp}),
    )
    jobs.poll_feeds(store, make_config(), now=NOW)
    jobs.poll_feeds(store, make_config(), now=NOW)
    assert http_server.seen("/f.xml")[1].headers["if-modified-since"] == stamp


def test_back_catalogue_and_trailers_are_skipped_on_first_poll(
    store: Store, http_server: LoopbackServer, make_config: Any
) -> None:
    add(store, http_server, "/grid.xml", Route(fixture_bytes("feeds/rss_itunes.xml")))
    jobs.poll_feeds(store, make_config(), now=NOW)
    by_title = {e.title: e for e in store.episodes.list()}
    assert by_title["How batteries balance the grid"].status == "pending"
    assert by_title["Heat pumps, honestly"].status == "pending"
    assert by_title["Season 3 trailer"].status == "skipped"
    assert by_title["The first episode"].status == "skipped"
    assert "back catalogue" in (by_title["The first episode"].error or "")
    batteries = by_title["How batteries balance the grid"]
    assert batteries.transcript_url == "https://gridtalk.example/42.json"
    assert batteries.transcript_type == "application/json"
    assert batteries.duration_seconds == 3723.0


def test_new_items_after_the_first_poll_are_pending_and_renames_do_not_duplicate(
    store: Store, http_server: LoopbackServer, make_config: Any
) -> None:
    content = fixture_bytes("feeds/rss_itunes.xml")
    add(store, http_server, "/grid.xml", Route(content))
    jobs.poll_feeds(store, make_config(), now=NOW)
    newer = content.replace(
        b"<item>",
        b"<item><title>Brand new</title><guid>gridtalk-043</guid>"
        b"<pubDate>Sat, 21 Nov 2026 08:00:00 GMT</pubDate>"
        b'<enclosure url="https://cdn.example/43.mp3" type="audio/mpeg"/></item><item>',
        1,
    ).replace(b"How batteries balance the grid", b"How batteries balance the grid (fixed)")
    http_server.routes["/grid.xml"] = Route(newer)
    results = jobs.poll_feeds(store, make_config(), now=NOW + timedelta(days=1))
    assert results[0].new_episodes == 1
    titles = [e.title for e in store.episodes.list()]
    assert len(titles) == 5
    assert "How batteries balance the grid (fixed)" in titles
    assert "How batteries balance the grid" not in titles


def test_broken_feeds_fail_alone_and_heal_by_themselves(
    store: Store, http_server: LoopbackServer, make_config: Any
) -> None:
    good = add(store, http_server, "/good.xml", Route(fixture_bytes("feeds/atom.xml")))
    broken = {
        "/404.xml": (Route(status=404, body=b"gone"), "HTTP 404"),
        "/500.xml": (Route(status=500, body=b"oops"), "HTTP 500"),
        "/slow.xml": (Route(fixture_bytes("feeds/atom.xml"), delay=3), "timed out"),
        "/page.html": (
            Route(fixture_bytes("feeds/not_a_feed.html"), content_type="text/html"),
            "HTML page",
        ),
        "/bomb.xml": (Route(fixture_bytes("feeds/entity_bomb.xml")), "XML entities"),
    }
    urls = {path: add(store, http_server, path, route) for path, (route, _) in broken.items()}
    config = make_config(feeds={"timeout_seconds": 1.0})

    for _ in range(2):
        results = {r.feed_url: r for r in jobs.poll_feeds(store, config, now=NOW)}
        assert results[good].outcome in {"updated", "not_modified"}

    for path, (_, message) in broken.items():
        result = results[urls[path]]
        assert result.outcome == "failed"
        assert message in (result.error or "")
        assert urls[path] in (result.error or ""), "the error names the feed"
        feed = store.feeds.get(urls[path])
        assert feed.consecutive_failures == 2
        assert message in (feed.last_error or "")
    assert store.feeds.get(good).consecutive_failures == 0
    assert len(store.episodes.list()) == 2
    # Broken XML is read leniently, as podcast apps do, and the mistake shows as a warning.
    lenient = add(store, http_server, "/bad.xml", Route(fixture_bytes("feeds/malformed.xml")))
    [result] = jobs.poll_feeds(store, config, now=NOW, urls=[lenient])
    assert result.outcome == "updated"
    assert any("malformed XML at line 3" in w for w in store.feeds.get(lenient).warnings)

    http_server.routes["/500.xml"] = Route(fixture_bytes("feeds/rss_itunes.xml"))
    jobs.poll_feeds(store, config, now=NOW, urls=[urls["/500.xml"]])
    healed = store.feeds.get(urls["/500.xml"])
    assert (healed.consecutive_failures, healed.last_error) == (0, None)


def test_redirected_feed_is_followed(
    store: Store, http_server: LoopbackServer, make_config: Any
) -> None:
    http_server.routes["/feed.xml"] = Route(fixture_bytes("feeds/atom.xml"))
    add(store, http_server, "/old", Route(redirect="/tracker"))
    http_server.routes["/tracker"] = Route(redirect="/feed.xml")
    results = jobs.poll_feeds(store, make_config(), now=NOW)
    assert results[0].outcome == "updated"
    # The Atom enclosure is relative: it resolves against the URL finally served.
    episode = next(e for e in store.episodes.list() if e.enclosure_url)
    assert episode.enclosure_url == http_server.url("/media/7.m4a")


def test_private_addresses_are_refused_unless_allowed(
    store: Store, http_server: LoopbackServer, make_config: Any
) -> None:
    url = add(store, http_server, "/grid.xml", Route(fixture_bytes("feeds/rss_itunes.xml")))
    results = jobs.poll_feeds(store, make_config(feeds={"allow_private_addresses": False}), now=NOW)
    assert results[0].outcome == "failed"
    assert "private or local address 127.0.0.1" in (results[0].error or "")
    assert http_server.count("/grid.xml") == 0
    assert store.feeds.get(url).consecutive_failures == 1
