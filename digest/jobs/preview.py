"""What a day's digest holds: the insights it sent, or the ones it would send now."""

from __future__ import annotations

from datetime import datetime, timedelta

from digest.config import Config
from digest.jobs.clock import utcnow
from digest.models import DigestItem
from digest.select import rank_key, select_top
from digest.store import Store


def digest_items(
    store: Store, config: Config, date: str, now: datetime | None = None
) -> list[DigestItem]:
    """Frozen insights for a date that has a digest, else today's selection from candidates."""
    used = store.insights.for_date(date)
    if used:
        return sorted(used, key=rank_key)
    now = now or utcnow()
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
