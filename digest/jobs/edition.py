"""An edition's insights: the ones it sent (frozen), or the ones it would send now.

An edition is a (date, selection): readers who follow the same shows and the same
topics read the same edition, so it is selected, frozen and rendered once however
many read it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.core.meaning import same_point
from digest.core.models import ALL_SHOWS, DigestItem, Edition, selection_feeds
from digest.core.topics import NO_TOPICS, Topics
from digest.edition.render import render_for_readers, subject_for
from digest.edition.select import select_top
from digest.jobs.editing import editor_order
from digest.store import Store


def frozen_items(store: Store, date: str, selection: str = ALL_SHOWS) -> list[DigestItem] | None:
    """An edition's frozen insights in the order its email showed them; None if unfrozen."""
    frozen = store.digests.get(date, selection)
    return None if frozen is None else store.insights.by_ids(frozen.insight_ids)


def edition_items(
    store: Store,
    config: Config,
    date: str,
    now: datetime | None = None,
    selection: str = ALL_SHOWS,
    *,
    freeze: bool = False,
    topics: Topics = NO_TOPICS,
    weekly: bool = False,
) -> list[DigestItem]:
    """An edition's insights in the order its email shows them: frozen ones if it was
    frozen, else the top ones now, frozen with the date if `freeze` (a send). When
    another run froze it first, what that run froze is what this one sends."""
    frozen = frozen_items(store, date, selection)
    if frozen is not None:
        return frozen
    header: list[str] = []
    items = top_items(store, config, now or utcnow(), selection, date, topics, weekly, header)
    if items and freeze:
        subject = subject_for(date, items, weekly)
        ids = [i.insight.id for i in items]
        frozen_ids = store.digests.freeze(
            date, subject, ids, now or utcnow(), selection, header="".join(header)
        )
        if list(frozen_ids.insight_ids) != ids:
            return store.insights.by_ids(frozen_ids.insight_ids)
    return items


def edition(
    config: Config,
    date: str,
    selection: str,
    items: list[DigestItem],
    *,
    weekly: bool = False,
    header: str = "",
) -> Edition:
    """The edition as channels deliver it, its email rendered once for all its readers."""
    email = render_for_readers(date, items, config.web.base_url, weekly=weekly, header=header)
    return Edition(date, selection, tuple(items), email)


def top_items(
    store: Store,
    config: Config,
    now: datetime,
    selection: str = ALL_SHOWS,
    date: str | None = None,
    topics: Topics = NO_TOPICS,
    weekly: bool = False,
    header: list[str] | None = None,
) -> list[DigestItem]:
    """The top insights of the selection's shows that its readers have not had yet:
    those on the readers' topics first (only those, if they asked), none that names a
    word they keep out. A weekly edition picks `weekly_insights` from the past week.
    The editor pass's header line, if it wrote one, is appended to `header`."""
    d = config.digest
    since = now - (timedelta(days=7) if weekly else timedelta(hours=d.lookback_hours))
    used = store.digests.used(selection, since, before=date or "9999-12-31")
    candidates = store.insights.candidates(since, selection_feeds(selection))
    pool = [c for c in candidates if c.insight.id not in used and not topics.excludes(c)]
    if topics.only:
        pool = [c for c in pool if topics.matches(c)]
    count = d.weekly_insights if weekly else d.insights
    same = same_point(d.similarity_threshold)
    day = date or now.date().isoformat()

    def record(model: str, version: str, calls: list[dict[str, Any]]) -> None:
        store.insights.record_calls(None, model, version, calls, now, stage="editor")

    choice = editor_order(
        config, day, pool, count, same, cache=store.editor, now=now, record=record
    )
    if choice is not None and header is not None and choice.header:
        header.append(choice.header)
    return select_top(
        pool,
        count=count,
        max_per_episode=d.max_per_episode,
        similarity=d.similarity_threshold,
        first=topics.matches if topics.include else None,
        same=same,
        order=choice.order if choice else None,
    )
