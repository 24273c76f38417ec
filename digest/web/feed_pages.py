"""A reader's private feed, `/feed/<token>.xml`: RSS 2.0 with one item per edition the
reader's `feed` channel took (their shows, topics and cadence), newest first. The
token is the only key: an unknown, removed or unsubscribed one is a plain 404."""

from __future__ import annotations

import html
from datetime import datetime

from feedgen.feed import FeedGenerator
from starlette.exceptions import HTTPException
from starlette.responses import Response

from digest.core.clock import utcnow
from digest.core.models import DigestItem, Endpoint
from digest.delivery.channels.feed import feed_url
from digest.edition.render import moment_url
from digest.jobs.edition import frozen_items
from digest.store.digest_repo import FrozenDigest
from digest.web.site import Site

ENTRIES = 50


class FeedPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def feed(self, token: str) -> Response:
        store = self.site.store
        endpoint = store.endpoints.by_secret("feed", token)
        reader = None if endpoint is None else store.subscribers.by_id(endpoint.subscriber_id)
        if endpoint is None or reader is None or not reader.subscribed:
            raise HTTPException(404, "This feed does not exist.")
        editions = []
        for day, key in store.digests.published(endpoint.key, ENTRIES):
            frozen = store.digests.get(day, key)
            items = frozen_items(store, day, key)
            if frozen is not None and items is not None:
                editions.append((frozen, items))
        body = rss_feed(self.site.config.web.base_url, endpoint, editions, utcnow())
        return Response(
            body,
            media_type="application/rss+xml; charset=utf-8",
            headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"},
        )


def rss_feed(
    base_url: str,
    endpoint: Endpoint,
    editions: list[tuple[FrozenDigest, list[DigestItem]]],
    now: datetime,
) -> bytes:
    """RSS 2.0 by feedgen: each edition an item whose description lists its insights,
    each naming its show and episode and linking to the moment."""
    url = feed_url(base_url, endpoint)
    feed = FeedGenerator()
    feed.title("Podcast Digest: your edition")
    feed.link(href=url, rel="self")
    feed.link(href=f"{base_url.rstrip('/')}/archive", rel="alternate")
    feed.description("The most useful insights from new podcast episodes, chosen for you.")
    feed.language("en")
    feed.lastBuildDate(editions[0][0].created_at if editions else now)
    for frozen, items in reversed(editions):  # feedgen lists the last added first
        entry = feed.add_entry()
        entry.guid(f"{url}#{frozen.date}-{frozen.selection}", permalink=False)
        entry.title(frozen.subject)
        entry.link(href=f"{base_url.rstrip('/')}/archive/{frozen.date}")
        entry.pubDate(frozen.created_at)
        entry.description(
            "\n".join(
                f"<p>{_escape(i.insight.text)} "
                f'(<a href="{_escape(moment_url(i))}">'
                f"{_escape(i.show_title)}: {_escape(i.episode_title)}</a>)</p>"
                for i in items
            )
        )
    return bytes(feed.rss_str(pretty=True))


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
