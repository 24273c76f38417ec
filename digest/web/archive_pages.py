"""The public archive: `/archive`, `/archive/<date>` (that day's all-shows edition, no
personal links) and `/archive/feed.xml`, an Atom feed of the last days."""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response

from digest.core.clock import utcnow
from digest.edition.render import render_email
from digest.jobs.edition import frozen_items
from digest.web.atom import atom_feed
from digest.web.site import Site

DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FEED_ENTRIES = 30


class ArchivePages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def index(self) -> Response:
        dates = self.site.store.digests.dates()
        return self.site.page(
            "Past digests",
            links=[(f"/archive/{d}", d) for d in dates],
            message="" if dates else "None yet.",
        )

    def day(self, day: str) -> Response:
        items = frozen_items(self.site.store, day) if DATE.fullmatch(day) else None
        if items is None:
            raise HTTPException(404, f"There is no digest for {day[:40]}.")
        frozen = self.site.store.digests.get(day)
        header = frozen.header if frozen else ""
        content = render_email(
            day, items, archive_url="/archive", feed_url="/archive/feed.xml", header=header
        )
        _, html = content.personalise("/archive", "/archive")
        return HTMLResponse(html)

    def feed(self) -> Response:
        store = self.site.store
        editions = [
            (frozen, store.insights.by_ids(frozen.insight_ids))
            for frozen in store.digests.editions(FEED_ENTRIES)
        ]
        body = atom_feed(self.site.config.web.base_url, editions, utcnow())
        return Response(
            body,
            media_type="application/atom+xml; charset=utf-8",
            headers={"Cache-Control": "public, max-age=900"},
        )
