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
    lenient = add(
        store, http_server, "/bad.xml", Route(fixture_bytes("feeds/unclosed_channel.xml"))
    )
    [result] = jobs.poll_feeds(store, config, now=NOW, urls=[lenient])
    assert result.outcome == "updated"
    assert any("malformed XML at line 5" in w for w in store.feeds.get(lenient).warnings)

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


def test_a_feed_cut_off_mid_way_fails_its_poll_raises_the_alert_and_keeps_its_title(
    store: Store, http_server: LoopbackServer, make_config: Any
) -> None:
    whole = fixture_bytes("feeds/rss_itunes.xml")
    url = add(store, http_server, "/cut.xml", Route(whole))
    config = make_config(feeds={"alert_after_failures": 3})
    [first] = jobs.poll_feeds(store, config, now=NOW)
    title = store.feeds.get(url).title
    assert first.outcome == "updated" and title, "a whole feed first, with its title"
    # The server now sends the document cut off after its channel title, every poll.
    http_server.routes["/cut.xml"] = Route(whole[: whole.index(b"<item")])
    alerts = []
    for n in range(1, 5):
        results = jobs.poll_feeds(store, config, now=NOW + timedelta(minutes=n))
        assert results[0].outcome == "failed", "a cut-off document is not a healthy poll"
        alerts.append(len(jobs.newly_unhealthy(results, config)))
    feed = store.feeds.get(url)
    assert feed.consecutive_failures == 4
    assert "malformed XML" in (feed.last_error or "") and "no complete item" in (
        feed.last_error or ""
    )
    assert alerts == [0, 0, 1, 0], "one alert, at [feeds] alert_after_failures"
    assert feed.title == title, "the title it had is kept, never replaced by the host"
    # Cut after its first item: that item is kept and the warning stored.
    http_server.routes["/cut.xml"] = Route(fixture_bytes("feeds/cut_after_first_item.xml"))
    [cut] = jobs.poll_feeds(store, config, now=NOW + timedelta(hours=1))
    assert cut.outcome == "updated"
    titles = {e.title for e in store.episodes.list()}
    assert "Whole episode" in titles and "Half an episode" not in titles
    assert any("cut off mid-way" in w for w in store.feeds.get(url).warnings)
    # It recovers: the whole document again, healthy, and the rest of the item arrives.
    http_server.routes["/cut.xml"] = Route(whole)
    [healed] = jobs.poll_feeds(store, config, now=NOW + timedelta(hours=2))
    feed = store.feeds.get(url)
    assert healed.outcome == "updated"
    assert (feed.consecutive_failures, feed.last_error, feed.warnings) == (0, None, ())


def test_a_feed_without_a_title_is_named_after_its_host_once(
    store: Store, http_server: LoopbackServer, make_config: Any
) -> None:
    untitled = b"<rss version='2.0'><channel><item><guid>1</guid></item></channel></rss>"
    url = add(store, http_server, "/untitled.xml", Route(untitled))
    jobs.poll_feeds(store, make_config(), now=NOW)
    assert store.feeds.get(url).title == "127.0.0.1"
