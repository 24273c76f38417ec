"""Extractions (one per transcript x prompt x model), their insights, and LLM usage."""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.core.models import DigestItem, Insight
from digest.store.schema import episodes, extractions, feeds, insights, llm_calls

ExtractionKey = tuple[str, str, str, str]  # episode id, transcript hash, prompt version, model


def _insight(row: Any) -> Insight:
    return Insight(
        id=row.id,
        episode_id=row.episode_id,
        text=row.text,
        quote=row.quote,
        start_seconds=row.start_seconds,
        importance=row.importance,
        prompt_version=row.prompt_version,
        model=row.model,
        chapter=row.chapter,
    )


def _item(row: Any) -> DigestItem:
    return DigestItem(
        insight=_insight(row),
        show_title=row.show_title,
        episode_title=row.episode_title,
        episode_url=row.link,
        audio_url=row.enclosure_url,
        published_at=row.published_at,
    )


_ITEMS = (
    sa.select(
        insights,
        episodes.c.title.label("episode_title"),
        episodes.c.link,
        episodes.c.enclosure_url,
        episodes.c.published_at,
        feeds.c.title.label("show_title"),
    )
    .join(episodes, episodes.c.id == insights.c.episode_id)
    .join(feeds, feeds.c.id == episodes.c.feed_id)
)


class InsightRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _key(self, key: ExtractionKey) -> Any:
        episode_id, text_sha256, version, model = key
        return sa.and_(
            extractions.c.episode_id == episode_id,
            extractions.c.text_sha256 == text_sha256,
            extractions.c.prompt_version == version,
            extractions.c.model == model,
        )

    def has_extraction(self, key: ExtractionKey) -> bool:
        """A successful extraction with exactly these inputs exists: nothing to redo."""
        query = sa.select(extractions.c.id).where(self._key(key), extractions.c.status == "ok")
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def save(
        self,
        key: ExtractionKey,
        backend: str,
        found: Sequence[Insight],
        dropped: Sequence[tuple[str, str]],
        now: datetime,
        error: str | None = None,
    ) -> None:
        """Record one extraction (replacing an earlier try with the same key) and its insights."""
        with self.engine.begin() as conn:
            conn.execute(extractions.delete().where(self._key(key)))
            inserted = conn.execute(
                extractions.insert().values(
                    episode_id=key[0],
                    text_sha256=key[1],
                    prompt_version=key[2],
                    model=key[3],
                    backend=backend,
                    status="failed" if error else "ok",
                    error=error,
                    dropped=json.dumps(list(dropped), ensure_ascii=False),
                    created_at=now,
                )
            ).inserted_primary_key
            assert inserted is not None
            extraction_id = inserted[0]
            if found:
                conn.execute(
                    insights.insert(),
                    [
                        {
                            **_row(i),
                            "extraction_id": extraction_id,
                            "position": n,
                            "created_at": now,
                        }
                        for n, i in enumerate(found)
                    ],
                )

    def record_calls(
        self,
        episode_id: str | None,
        model: str,
        version: str,
        calls: Sequence[dict[str, Any]],
        now: datetime,
        stage: str = "extraction",
    ) -> None:
        if calls:
            rows = [
                {
                    **c,
                    "episode_id": episode_id,
                    "model": model,
                    "prompt_version": version,
                    "created_at": now,
                    "stage": stage,
                }
                for c in calls
            ]
            with self.engine.begin() as conn:
                conn.execute(llm_calls.insert(), rows)

    def calls_for(self, episode_id: str) -> builtins.list[dict[str, Any]]:
        """The episode's extraction log: every chat call, oldest first, with its outcome
        (ok, malformed, truncated) and tokens."""
        query = (
            sa.select(llm_calls)
            .where(llm_calls.c.episode_id == episode_id)
            .order_by(llm_calls.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def _latest(self) -> Any:
        """Id of each episode's newest successful extraction: the insights that count."""
        return (
            sa.select(sa.func.max(extractions.c.id))
            .where(extractions.c.status == "ok")
            .group_by(extractions.c.episode_id)
        )

    def for_episode(self, episode_id: str) -> builtins.list[Insight]:
        query = (
            sa.select(insights)
            .where(
                insights.c.episode_id == episode_id, insights.c.extraction_id.in_(self._latest())
            )
            .order_by(insights.c.position)
        )
        with self.engine.connect() as conn:
            return [_insight(r) for r in conn.execute(query)]

    def candidates(
        self, since: datetime, feeds: tuple[int, ...] | None = None
    ) -> builtins.list[DigestItem]:
        """Insights of current extractions made since `since`, of these feeds (None: all)."""
        recent = sa.select(extractions.c.id).where(
            extractions.c.id.in_(self._latest()), extractions.c.created_at >= since
        )
        query = _ITEMS.where(insights.c.extraction_id.in_(recent))
        if feeds is not None:
            query = query.where(episodes.c.feed_id.in_(feeds))
        with self.engine.connect() as conn:
            return [_item(r) for r in conn.execute(query)]

    def by_ids(self, ids: Sequence[str]) -> builtins.list[DigestItem]:
        """These insights, in the order given (a frozen digest's order); gone ones left out."""
        with self.engine.connect() as conn:
            found = {r.id: _item(r) for r in conn.execute(_ITEMS.where(insights.c.id.in_(ids)))}
        return [found[i] for i in ids if i in found]

    def usage_by_day(self, since: datetime) -> builtins.list[dict[str, Any]]:
        day = sa.func.substr(sa.cast(llm_calls.c.created_at, sa.String), 1, 10)
        query = (
            sa.select(
                day.label("day"),
                llm_calls.c.stage,
                llm_calls.c.model,
                sa.func.count().label("calls"),
                sa.func.sum(llm_calls.c.prompt_tokens).label("prompt_tokens"),
                sa.func.sum(llm_calls.c.completion_tokens).label("completion_tokens"),
            )
            .where(llm_calls.c.created_at >= since)
            .group_by(day, llm_calls.c.stage, llm_calls.c.model)
            .order_by(day, llm_calls.c.stage)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def _row(insight: Insight) -> dict[str, Any]:
    return {
        "id": insight.id,
        "episode_id": insight.episode_id,
        "text": insight.text,
        "quote": insight.quote,
        "start_seconds": insight.start_seconds,
        "importance": insight.importance,
        "prompt_version": insight.prompt_version,
        "model": insight.model,
        "chapter": insight.chapter,
    }
