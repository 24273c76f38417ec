"""Use cases that join a stage to the store: what the CLI commands and Prefect tasks call.

Stages (`feeds`, `media`, `transcribe`, ...) stay free of persistence; these modules
record their results and turn one item's failure into data, so the batch goes on.
"""

from digest.jobs.clock import utcnow
from digest.jobs.episode import (
    EpisodeOutcome,
    Failure,
    LocalSteps,
    failures,
    take_episode,
    work_list,
)
from digest.jobs.insights import Extractor, ExtractResult, backend_for
from digest.jobs.poll import feed_client, fetch, newly_unhealthy, poll_feeds, record
from digest.jobs.preview import cost_usd, digest_items
from digest.jobs.process import Hooks, Processor, ProcessResult
from digest.jobs.send import DeliveryIncomplete, SendReport, SendResult, send_digests
from digest.jobs.signup import shows_from_urls

__all__ = [
    "DeliveryIncomplete",
    "EpisodeOutcome",
    "ExtractResult",
    "Extractor",
    "Failure",
    "Hooks",
    "LocalSteps",
    "ProcessResult",
    "Processor",
    "SendReport",
    "SendResult",
    "backend_for",
    "cost_usd",
    "digest_items",
    "failures",
    "feed_client",
    "fetch",
    "newly_unhealthy",
    "poll_feeds",
    "record",
    "send_digests",
    "shows_from_urls",
    "take_episode",
    "utcnow",
    "work_list",
]
