"""Feed rows: what was subscribed, and how each feed's last polls went."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.core.errors import InvalidInput, NotFound
from digest.core.models import Feed
from digest.store.schema import feeds


def _feed(row: Any) -> Feed:
    return Feed(
        id=row.id,
        url=row.url,
        title=row.title,
        etag=row.etag,
        last_modified=row.last_modified,
        last_polled_at=row.last_polled_at,
        last_success_at=row.last_success_at,
        last_error=row.last_error,
        consecutive_failures=row.consecutive_failures,
        added_at=row.added_at,
        warnings=tuple(json.loads(row.warnings or "[]")),
    )


class FeedRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, url: str, now: datetime, title: str = "") -> Feed:
        with self.engine.begin() as conn:
            if conn.execute(sa.select(feeds.c.id).where(feeds.c.url == url)).first():
                raise InvalidInput(f"feed {url} is already added")
            conn.execute(feeds.insert().values(url=url, title=title, added_at=now))
        return self.get(url)

    def get(self, url: str) -> Feed:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(feeds).where(feeds.c.url == url)).first()
        if row is None:
            raise NotFound(f"no feed {url}; see `digest feeds list`")
        return _feed(row)

    def list(self) -> list[Feed]:
        with self.engine.connect() as conn:
            return [_feed(r) for r in conn.execute(sa.select(feeds).order_by(feeds.c.id))]

    def remove(self, url: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(feeds.delete().where(feeds.c.url == url)).rowcount == 0:
                raise NotFound(f"no feed {url}; see `digest feeds list`")

    def record_success(
        self,
        feed_id: int,
        now: datetime,
        *,
        title: str | None,
        etag: str | None,
        modified: str | None,
        warnings: tuple[str, ...] | None = None,
    ) -> None:
        """A fetch that worked (200 or 304): the feed is healthy again. `warnings`:
        what parsing recovered from (None on a 304: the last ones still hold)."""
        values: dict[str, Any] = {
            "last_polled_at": now,
            "last_success_at": now,
            "last_error": None,
            "consecutive_failures": 0,
            "etag": etag,
            "last_modified": modified,
        }
        if title:
            values["title"] = title
        if warnings is not None:
            values["warnings"] = json.dumps(list(warnings))
        with self.engine.begin() as conn:
            conn.execute(feeds.update().where(feeds.c.id == feed_id).values(**values))

    def record_failure(self, feed_id: int, now: datetime, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                feeds.update()
                .where(feeds.c.id == feed_id)
                .values(
                    last_polled_at=now,
                    last_error=error,
                    consecutive_failures=feeds.c.consecutive_failures + 1,
                )
            )

    def health(self) -> dict[str, int]:
        failing = sa.func.sum(sa.case((feeds.c.consecutive_failures > 0, 1), else_=0))
        with self.engine.connect() as conn:
            total, bad = conn.execute(sa.select(sa.func.count(), failing)).one()
        return {"total": int(total), "failing": int(bad or 0)}
