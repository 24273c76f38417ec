"""Episode rows: every item ever seen in a feed, with where it stands in the pipeline."""

from __future__ import annotations

import builtins
import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.core.errors import NotFound
from digest.core.models import Episode, EpisodeStatus, Feed, ParsedEpisode, Person
from digest.store.schema import episodes, feeds, transcripts

StatusFor = Callable[[ParsedEpisode], tuple[EpisodeStatus, str | None]]

_SELECT = (
    sa.select(
        episodes,
        feeds.c.url.label("feed_url"),
        feeds.c.title.label("show_title"),
        transcripts.c.source.label("transcript_source"),
        transcripts.c.engine.label("transcript_engine"),
    )
    .join(feeds, feeds.c.id == episodes.c.feed_id)
    .outerjoin(transcripts, transcripts.c.episode_id == episodes.c.id)
)


def _episode(row: Any) -> Episode:
    return Episode(
        id=row.id,
        feed_id=row.feed_id,
        feed_url=row.feed_url,
        show_title=row.show_title,
        guid=row.guid,
        title=row.title,
        link=row.link,
        summary=row.summary,
        published_at=row.published_at,
        enclosure_url=row.enclosure_url,
        enclosure_type=row.enclosure_type,
        enclosure_length=row.enclosure_length,
        duration_seconds=row.duration_seconds,
        transcript_url=row.transcript_url,
        transcript_type=row.transcript_type,
        status=row.status,
        error=row.error,
        discovered_at=row.discovered_at,
        attempts=row.attempts,
        transcript_source=row.transcript_source,
        transcript_engine=row.transcript_engine,
        people=tuple(Person(**p) for p in json.loads(row.people or "[]")),
        chapters_url=row.chapters_url,
        retry_at=row.retry_at,
        runs=row.runs,
    )


def _metadata(item: ParsedEpisode) -> dict[str, Any]:
    """Columns a publisher may edit after release; identity and status are not among them."""
    transcript = item.transcripts[0] if item.transcripts else None
    return {
        "guid": item.guid,
        "title": item.title,
        "link": item.link,
        "summary": item.summary,
        "published_at": item.published_at,
        "enclosure_url": item.enclosure_url,
        "enclosure_type": item.enclosure_type,
        "enclosure_length": item.enclosure_length,
        "duration_seconds": item.duration_seconds,
        "episode_type": item.episode_type,
        "transcript_url": transcript.url if transcript else None,
        "transcript_type": transcript.type if transcript else None,
        "people": json.dumps([dataclasses.asdict(p) for p in item.people]),
        "chapters_url": item.chapters_url,
    }


class EpisodeRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upsert(
        self,
        feed: Feed,
        ids: Sequence[str],
        items: Sequence[ParsedEpisode],
        now: datetime,
        status_for: StatusFor,
    ) -> tuple[list[str], list[str]]:
        """Insert unseen items (status from `status_for`), refresh known ones' metadata.

        Returns the ids of the new episodes that are pending and of those skipped.
        A re-poll therefore never creates a duplicate, whatever changed in the item.
        """
        pending: list[str] = []
        skipped: list[str] = []
        with self.engine.begin() as conn:
            known = set(
                conn.execute(
                    sa.select(episodes.c.id).where(episodes.c.feed_id == feed.id)
                ).scalars()
            )
            for episode_id, item in zip(ids, items, strict=True):
                if episode_id in known:
                    conn.execute(
                        episodes.update()
                        .where(episodes.c.id == episode_id)
                        .values(**_metadata(item), updated_at=now)
                    )
                    continue
                status, reason = status_for(item)
                conn.execute(
                    episodes.insert().values(
                        id=episode_id,
                        feed_id=feed.id,
                        item_key=item.key,
                        status=status,
                        error=reason,
                        discovered_at=now,
                        updated_at=now,
                        **_metadata(item),
                    )
                )
                (pending if status == "pending" else skipped).append(episode_id)
        return pending, skipped

    def get(self, episode_id: str) -> Episode:
        """By id, or by a unique prefix of at least 4 characters (as tables shorten them)."""
        with self.engine.connect() as conn:
            rows = conn.execute(_SELECT.where(episodes.c.id == episode_id)).all()
            if not rows and len(episode_id) >= 4 and episode_id.isalnum():
                prefix = _SELECT.where(episodes.c.id.startswith(episode_id)).limit(2)
                rows = conn.execute(prefix).all()
        if len(rows) > 1:
            raise NotFound(f"episode id {episode_id!r} is ambiguous; give more characters")
        if not rows:
            raise NotFound(f"no episode {episode_id}; see `digest episodes`")
        return _episode(rows[0])

    def list(
        self, *, status: str | None = None, feed_id: int | None = None, limit: int | None = None
    ) -> list[Episode]:
        query = _SELECT.order_by(
            episodes.c.published_at.desc().nulls_last(), episodes.c.discovered_at.desc()
        )
        if status:
            query = query.where(episodes.c.status == status)
        if feed_id is not None:
            query = query.where(episodes.c.feed_id == feed_id)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_episode(r) for r in conn.execute(query)]

    def set_status(
        self, episode_id: str, status: EpisodeStatus, now: datetime, error: str | None = None
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                episodes.update()
                .where(episodes.c.id == episode_id)
                .values(status=status, error=error, retry_at=None, updated_at=now)
            )

    def record_failure(
        self, episode_id: str, now: datetime, error: str, retry_at: datetime | None = None
    ) -> None:
        """Mark failed with the reason. `retry_at` (a failure that may pass) schedules
        another attempt, while `attempts` stays under the limit; None leaves it failed."""
        with self.engine.begin() as conn:
            conn.execute(
                episodes.update()
                .where(episodes.c.id == episode_id)
                .values(
                    status="failed",
                    error=error,
                    attempts=episodes.c.attempts + 1,
                    retry_at=retry_at,
                    updated_at=now,
                )
            )

    def count_run(self, episode_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                episodes.update()
                .where(episodes.c.id == episode_id)
                .values(runs=episodes.c.runs + 1)
            )

    def reset(self, episode_id: str, now: datetime) -> None:
        """An operator's retry: pending again, with every attempt back."""
        with self.engine.begin() as conn:
            conn.execute(
                episodes.update()
                .where(episodes.c.id == episode_id)
                .values(status="pending", attempts=0, retry_at=None, updated_at=now)
            )

    def processable(
        self, *, max_attempts: int, now: datetime | None = None, limit: int | None = None
    ) -> builtins.list[Episode]:
        """Pending episodes, and failed ones whose retry is due (with attempts left),
        oldest first. Without `now`, every scheduled retry counts as due."""
        retry = sa.and_(
            episodes.c.status == "failed",
            episodes.c.attempts < max_attempts,
            episodes.c.retry_at.is_not(None),
        )
        if now is not None:
            retry = sa.and_(retry, episodes.c.retry_at <= now)
        query = _SELECT.where(sa.or_(episodes.c.status == "pending", retry)).order_by(
            episodes.c.published_at.asc().nulls_last(), episodes.c.discovered_at.asc()
        )
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_episode(r) for r in conn.execute(query)]

    def count_by_status(self) -> dict[str, int]:
        query = sa.select(episodes.c.status, sa.func.count()).group_by(episodes.c.status)
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(query)}
