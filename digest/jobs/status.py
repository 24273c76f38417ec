"""What operators ask of a running pipeline: what failed, what the LLM cost. The one
report `digest status` prints (and emits as JSON) and the flows' artifacts show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.jobs.episode import failures
from digest.store import Store


def status_report(store: Store, config: Config) -> dict[str, Any]:
    """Feeds, episodes by stage, subscribers, failures, the week's LLM usage and the
    week's deliveries per channel kind and outcome."""
    report = store.summary()
    report["llm_usage"] = [
        {**u, "cost_usd": cost_usd(config, u["model"], u["prompt_tokens"], u["completion_tokens"])}
        for u in store.insights.usage_by_day(utcnow() - timedelta(days=7))
    ]
    report["failing_feeds"] = [
        {"url": f.url, "consecutive_failures": f.consecutive_failures, "last_error": f.last_error}
        for f in store.feeds.list()
        if f.consecutive_failures
    ]
    report["pending_signups"] = report["subscribers"].get("pending", 0)
    report["deliveries"] = store.digests.count_by_channel(utcnow() - timedelta(days=7))
    report["failed_episodes"] = [
        {
            "id": f.episode_id,
            "title": f.title,
            "show": f.show,
            "error": f.error,
            "attempts": f.attempts,
            "retry_at": f.retry_at.isoformat() if f.retry_at else None,
        }
        for f in failures(store, config)
    ]
    return report


def cost_usd(
    config: Config, model: str, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """Estimated cost from `[extraction.prices]`; None for a model without a price."""
    price = config.extraction.prices.get(model)
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
