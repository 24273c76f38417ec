"""The archive as an Atom feed: one entry per day's all-shows edition (no personal data)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from feedgen.feed import FeedGenerator

from digest.core.models import DigestItem
from digest.store.digest_repo import FrozenDigest


def atom_feed(
    base_url: str, editions: Sequence[tuple[FrozenDigest, Sequence[DigestItem]]], now: datetime
) -> bytes:
    """Atom 1.0 built by feedgen (escaping and dates done by a library, not by hand)."""
    base = base_url.rstrip("/")
    feed = FeedGenerator()
    feed.id(f"{base}/archive")
    feed.title("Podcast Digest")
    feed.author({"name": "Podcast Digest"})
    feed.subtitle("The most useful insights from new podcast episodes, one digest a day.")
    feed.link(href=f"{base}/archive", rel="alternate")
    feed.link(href=f"{base}/archive/feed.xml", rel="self")
    feed.language("en")
    feed.updated(editions[0][0].created_at if editions else now)
    for frozen, items in reversed(editions):  # feedgen lists the last added first
        entry = feed.add_entry()
        url = f"{base}/archive/{frozen.date}"
        entry.id(url)
        entry.title(frozen.subject)
        entry.link(href=url, rel="alternate")
        entry.published(frozen.created_at)
        entry.updated(frozen.created_at)
        summary = "\n\n".join(f"{i.insight.text} ({i.show_title})" for i in items)
        entry.summary(summary or frozen.subject)
    return bytes(feed.atom_str(pretty=True))
