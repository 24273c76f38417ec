"""A show served on loopback: RSS items with audio or a publisher transcript."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

from digest import jobs
from digest.store import Store
from tests.support.httpserver import LoopbackServer, Route


def item(n: int, *, audio: str = "", transcript: tuple[str, str] | None = None) -> str:
    published = format_datetime(jobs.utcnow() - timedelta(hours=n))
    parts = [f"<item><title>Episode {n}</title><guid>ep-{n}</guid><pubDate>{published}</pubDate>"]
    if audio:
        parts.append(f'<enclosure url="{audio}" type="audio/mpeg"/>')
    if transcript:
        parts.append(f'<podcast:transcript url="{transcript[0]}" type="{transcript[1]}"/>')
    return "".join(parts) + "</item>"


def serve_feed(server: LoopbackServer, store: Store, items: list[str]) -> None:
    xml = (
        '<rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel>'
        "<title>Test Show</title>" + "".join(items) + "</channel></rss>"
    )
    server.routes["/feed.xml"] = Route(xml.encode())
    store.feeds.add(server.url("/feed.xml"), jobs.utcnow())
