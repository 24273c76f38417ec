"""What a day's digest holds: the insights it sent, or the ones it would send now."""

from __future__ import annotations

from datetime import datetime, timedelta

from digest.config import Config
from digest.jobs.clock import utcnow
from digest.models import DigestItem
from digest.select import select_top
from digest.store import Store


def frozen_items(store: Store, date: str) -> list[DigestItem] | None:
    """A date's frozen digest in the order its email showed it; None if it has none."""
    frozen = store.digests.get(date)
    if frozen is None:
        return None
    by_id = {i.insight.id: i for i in store.insights.for_date(date)}
    return [by_id[i] for i in frozen.insight_ids if i in by_id]


def digest_items(
    store: Store, config: Config, date: str, now: datetime | None = None
) -> list[DigestItem]:
    """The date's frozen digest if it has one, else what would be selected now."""
    frozen = frozen_items(store, date)
    return frozen if frozen is not None else selection(store, config, now or utcnow())


def selection(store: Store, config: Config, now: datetime) -> list[DigestItem]:
    """The top insights among current candidates, as the next digest would take them."""
    since = now - timedelta(hours=config.digest.lookback_hours)
    return select_top(
        store.insights.candidates(since),
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
