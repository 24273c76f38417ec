"""Polling: fetch feeds concurrently, then parse and record them one by one.

Two units: `fetch` (network only; raises, so an orchestrator can retry it) and
`record` (parse and store the outcome, a failure included). `poll_feeds` is the
loop `digest poll` runs; the poll-feeds flow runs the same two units as tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.core.errors import DigestError
from digest.core.models import Feed, FeedPollResult, FetchResult
from digest.core.net import GuardedClient
from digest.feeds.parse import episode_id, fetch_feed, host_title, initial_status, parse_feed
from digest.jobs import progress
from digest.store import Store

log = logging.getLogger("digest.feeds")


def feed_client(config: Config) -> GuardedClient:
    return GuardedClient(
        allow_private=config.feeds.allow_private_addresses, timeout=config.feeds.timeout_seconds
    )


def poll_feeds(
    store: Store, config: Config, *, urls: Iterable[str] | None = None, now: datetime | None = None
) -> list[FeedPollResult]:
    """Poll every feed (or those named): fetch concurrently, then parse and record in order."""
    wanted = set(urls) if urls is not None else None
    feeds = [f for f in store.feeds.list() if wanted is None or f.url in wanted]
    now = now or utcnow()
    progress.begin("feeds", len(feeds))
    with feed_client(config) as client, ThreadPoolExecutor(config.feeds.concurrency) as pool:
        fetched = list(pool.map(lambda feed: _outcome(client, feed, config), feeds))
    return [
        record(store, config, feed, outcome, now)
        for feed, outcome in zip(feeds, fetched, strict=True)
    ]


def fetch(client: GuardedClient, feed: Feed, config: Config) -> FetchResult:
    """One conditional GET of the feed; raises FetchError (`retryable` for network faults)."""
    return fetch_feed(
        client,
        feed.url,
        etag=feed.etag,
        last_modified=feed.last_modified,
        max_bytes=config.feeds.max_feed_bytes,
    )


def _outcome(client: GuardedClient, feed: Feed, config: Config) -> FetchResult | Exception:
    try:
        return fetch(client, feed, config)
    except Exception as exc:  # recorded against this feed by record(); never sinks the batch
        return exc


def newly_unhealthy(results: Iterable[FeedPollResult], config: Config) -> list[FeedPollResult]:
    """Feeds whose failures just reached `[feeds] alert_after_failures`: exactly at the
    threshold, so an outage raises one alert, not one per poll."""
    threshold = config.feeds.alert_after_failures
    return [r for r in results if r.outcome == "failed" and r.consecutive_failures == threshold]


def record(
    store: Store, config: Config, feed: Feed, outcome: FetchResult | Exception, now: datetime
) -> FeedPollResult:
    """Parse and store what a fetch brought, or the failure; never raises for one feed."""
    result = _record(store, config, feed, outcome, now)
    progress.advance("feeds", note=result.outcome)
    return result


def _record(
    store: Store, config: Config, feed: Feed, outcome: FetchResult | Exception, now: datetime
) -> FeedPollResult:
    try:
        if isinstance(outcome, Exception):
            raise outcome
        if outcome.not_modified:
            store.feeds.record_success(
                feed.id, now, title=None, etag=outcome.etag, modified=outcome.last_modified
            )
            return FeedPollResult(feed.url, "not_modified")
        parsed = parse_feed(outcome.content, outcome.url)
        for warning in parsed.warnings:
            log.warning("%s: %s", feed.url, warning)
        first_poll = feed.last_success_at is None
        pending, skipped = store.episodes.upsert(
            feed,
            [episode_id(feed.url, item.key) for item in parsed.episodes],
            parsed.episodes,
            now,
            lambda item: initial_status(
                item, first_poll=first_poll, now=now, lookback_hours=config.feeds.lookback_hours
            ),
        )
        store.feeds.record_success(
            feed.id,
            now,
            # A title the feed left out never replaces the one it had; a show that never
            # had one is named after its host, as podcast apps do.
            title=parsed.title or (None if feed.title else host_title(feed.url)),
            etag=outcome.etag,
            modified=outcome.last_modified,
            warnings=parsed.warnings,
        )
        return FeedPollResult(feed.url, "updated", len(pending), len(skipped), None, tuple(pending))
    except DigestError as exc:
        message = str(exc) if feed.url in str(exc) else f"{feed.url}: {exc}"
    except Exception as exc:  # a bug or a library surprise: still only this feed fails
        log.exception("unexpected error polling %s", feed.url)
        message = f"{feed.url}: unexpected {type(exc).__name__}: {exc}"
    log.info("feed failed: %s", message)
    store.feeds.record_failure(feed.id, now, message)
    failures = feed.consecutive_failures + 1
    return FeedPollResult(feed.url, "failed", error=message, consecutive_failures=failures)


def poll_summary(results: list[FeedPollResult]) -> str:
    """One line for a poll, as `digest poll` and the poll-feeds flow both say it."""
    new = sum(r.new_episodes for r in results)
    failed = sum(r.outcome == "failed" for r in results)
    return f"Polled {len(results)} feed(s): {new} new episode(s), {failed} failed."
