"""What a day's digest holds: the insights an edition sent, or the ones it would send now.

An edition is a (date, selection): readers who follow the same shows read the same
edition, so it is selected, frozen and rendered once however many read it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.core.models import ALL_SHOWS, DigestItem, selection_feeds
from digest.edition.select import select_top
from digest.store import Store


def frozen_items(store: Store, date: str, selection: str = ALL_SHOWS) -> list[DigestItem] | None:
    """An edition's frozen insights in the order its email showed them; None if unfrozen."""
    frozen = store.digests.get(date, selection)
    return None if frozen is None else store.insights.by_ids(frozen.insight_ids)


def digest_items(
    store: Store,
    config: Config,
    date: str,
    now: datetime | None = None,
    selection: str = ALL_SHOWS,
) -> list[DigestItem]:
    """The edition's frozen insights if it has them, else what would be selected now."""
    frozen = frozen_items(store, date, selection)
    if frozen is not None:
        return frozen
    return top_items(store, config, now or utcnow(), selection, date)


def top_items(
    store: Store, config: Config, now: datetime, selection: str = ALL_SHOWS, date: str | None = None
) -> list[DigestItem]:
    """The top insights of the selection's shows that its readers have not had yet."""
    since = now - timedelta(hours=config.digest.lookback_hours)
    used = store.digests.used(selection, since, before=date or "9999-12-31")
    candidates = store.insights.candidates(since, selection_feeds(selection))
    return select_top(
        [c for c in candidates if c.insight.id not in used],
        count=config.digest.insights,
        max_per_episode=config.digest.max_per_episode,
        similarity=config.digest.similarity_threshold,
    )


def cost_usd(
    config: Config, model: str, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """Estimated cost from `[extraction.prices]`; None for a model without a price."""
    price = config.extraction.prices.get(model)
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
