"""A reader's private feed, `/feed/<token>.xml`: RSS 2.0 with one item per edition the
reader's `feed` channel took (their shows, topics and cadence), newest first. With the
edition read aloud (the `voice` extra) each item is a podcast episode: an MP3
enclosure with its length and duration, Podcasting 2.0 chapters (one per insight,
linking to its source moment) and transcript, and the same chapters inline as Podlove
Simple Chapters for apps that read those. The token is the only key: an unknown,
removed or unsubscribed one is a plain 404, for the feed and its files alike."""

from __future__ import annotations

import json
import re
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from lxml import etree
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.core.models import DigestItem, Endpoint
from digest.delivery.channels.feed import feed_url, voice_folder
from digest.delivery.voice import edition_name
from digest.jobs.edition import frozen_items
from digest.store.digest_repo import FrozenDigest
from digest.web.site import Site

ENTRIES = 50
NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
    "psc": "http://podlove.org/simple-chapters",
    "atom": "http://www.w3.org/2005/Atom",
}
MEDIA = {".mp3": "audio/mpeg", ".json": "application/json+chapters", ".vtt": "text/vtt"}
FILE = re.compile(r"(\d{4}-\d{2}-\d{2}-[0-9a-f]{16})(\.mp3|\.json|\.vtt)")
Editions = list[tuple[FrozenDigest, list[DigestItem]]]


class FeedPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def _endpoint(self, token: str) -> Endpoint:
        store = self.site.store
        endpoint = store.endpoints.by_secret("feed", token)
        reader = None if endpoint is None else store.subscribers.by_id(endpoint.subscriber_id)
        if endpoint is None or reader is None or not reader.subscribed:
            raise HTTPException(404, "This feed does not exist.")
        return endpoint

    def _editions(self, endpoint: Endpoint) -> Editions:
        store = self.site.store
        editions = []
        for day, key in store.digests.published(endpoint.key, ENTRIES):
            frozen = store.digests.get(day, key)
            items = frozen_items(store, day, key)
            if frozen is not None and items is not None:
                editions.append((frozen, items))
        return editions

    def feed(self, token: str) -> Response:
        endpoint = self._endpoint(token)
        config = self.site.config
        body = rss_feed(
            config.web.base_url, endpoint, self._editions(endpoint), utcnow(), _Voice(config)
        )
        return Response(
            body,
            media_type="application/rss+xml; charset=utf-8",
            headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"},
        )

    def media(self, token: str, name: str) -> Response:
        """An edition's MP3, chapters or transcript, for the reader whose feed lists it."""
        endpoint = self._endpoint(token)
        found = FILE.fullmatch(name)
        published = self.site.store.digests.published(endpoint.key, ENTRIES)
        mine = {edition_name(day, key) for day, key in published}  # no insights loaded
        if found is None or found.group(1) not in mine:
            raise HTTPException(404, "No such file in this feed.")
        path = voice_folder(self.site.config) / name
        if not path.is_file():
            raise HTTPException(404, "No such file in this feed.")
        media_type = MEDIA[found.group(2)]
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private"})


class _Voice:
    """The audio made for an edition, if it was."""

    def __init__(self, config: Config) -> None:
        self.folder = voice_folder(config)

    def get(self, frozen: FrozenDigest) -> tuple[str, dict[str, object]] | None:
        name = edition_name(frozen.date, frozen.selection)
        mp3, chapters = self.folder / f"{name}.mp3", self.folder / f"{name}.json"
        if not (mp3.is_file() and chapters.is_file()):
            return None
        data = json.loads(chapters.read_text())
        return name, {"size": mp3.stat().st_size, **data}


def rss_feed(
    base_url: str, endpoint: Endpoint, editions: Editions, now: datetime, voice: _Voice
) -> bytes:
    """RSS 2.0 (lxml builds it: escaping is the library's, not ours)."""
    url = feed_url(base_url, endpoint)
    files = url.removesuffix(".xml") + "/"
    base = base_url.rstrip("/")
    rss = etree.Element("rss", version="2.0", nsmap=NS)
    channel = _sub(rss, "channel")
    _sub(channel, "title", "Podcast Digest: your edition")
    _sub(channel, "link", f"{base}/archive")
    _sub(channel, "description", "The most useful insights from new podcast episodes, for you.")
    _sub(channel, "language", "en")
    _sub(channel, "lastBuildDate", format_datetime(editions[0][0].created_at if editions else now))
    _sub(channel, f"{{{NS['atom']}}}link", href=url, rel="self", type="application/rss+xml")
    _sub(channel, f"{{{NS['itunes']}}}author", "Podcast Digest")
    _sub(channel, f"{{{NS['itunes']}}}explicit", "false")
    _sub(channel, f"{{{NS['itunes']}}}block", "Yes")  # private: never in a directory
    for frozen, items in editions:
        item = _sub(channel, "item")
        _sub(item, "title", frozen.subject)
        _sub(item, "link", f"{base}/archive/{frozen.date}")
        _sub(item, "guid", f"{url}#{frozen.date}-{frozen.selection}", isPermaLink="false")
        _sub(item, "pubDate", format_datetime(frozen.created_at))
        _sub(item, "description", _description(items))
        spoken = voice.get(frozen)
        if spoken is None:
            continue
        name, audio = spoken
        _sub(
            item,
            "enclosure",
            url=f"{files}{name}.mp3",
            length=str(audio["size"]),
            type="audio/mpeg",
        )
        _sub(item, f"{{{NS['itunes']}}}duration", str(round(float(str(audio["duration"])))))
        _sub(
            item,
            f"{{{NS['podcast']}}}chapters",
            url=f"{files}{name}.json",
            type="application/json+chapters",
        )
        _sub(item, f"{{{NS['podcast']}}}transcript", url=f"{files}{name}.vtt", type="text/vtt")
        simple = _sub(item, f"{{{NS['psc']}}}chapters", version="1.2")
        for chapter in audio["chapters"]:  # type: ignore[attr-defined]
            attrs = {"start": _npt(chapter["startTime"]), "title": chapter["title"]}
            if chapter.get("url"):
                attrs["href"] = chapter["url"]
            _sub(simple, f"{{{NS['psc']}}}chapter", **attrs)
    return bytes(etree.tostring(rss, xml_declaration=True, encoding="utf-8", pretty_print=True))


def _description(items: list[DigestItem]) -> str:
    """The insights as HTML (escaped once more by the XML writer, as RSS expects)."""
    from html import escape

    return "\n".join(
        f'<p>{escape(i.insight.text)} (<a href="{escape(i.moment_url)}">'
        f"{escape(i.show_title)}: {escape(i.episode_title)}</a>)</p>"
        for i in items
    )


def _npt(seconds: float) -> str:
    """Normal play time, as Podlove Simple Chapters write it."""
    whole, millis = int(seconds), int(seconds % 1 * 1000)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{millis:03d}"


def _sub(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
    element = etree.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element
