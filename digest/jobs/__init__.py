"""Use cases that join a stage to the store: what the CLI commands and Prefect tasks call.

Stages (`feeds`, `media`, `transcribe`, ...) stay free of persistence; these modules
record their results and turn one item's failure into data, so the batch goes on.
"""

from digest.core.clock import utcnow
from digest.jobs.episode import (
    EpisodeOutcome,
    Failure,
    failures,
    process_episode,
    work_list,
)
from digest.jobs.extraction import Extractor, ExtractResult
from digest.jobs.poll import feed_client, fetch, newly_unhealthy, poll_feeds, record
from digest.jobs.preview import cost_usd, digest_items
from digest.jobs.send import DeliveryIncomplete, SendReport, SendResult, send_digests
from digest.jobs.signup import shows_from_urls
from digest.jobs.transcription import Hooks, LocalSteps, Transcription, TranscriptResult

__all__ = [
    "DeliveryIncomplete",
    "EpisodeOutcome",
    "ExtractResult",
    "Extractor",
    "Failure",
    "Hooks",
    "LocalSteps",
    "SendReport",
    "SendResult",
    "TranscriptResult",
    "Transcription",
    "cost_usd",
    "digest_items",
    "failures",
    "feed_client",
    "fetch",
    "newly_unhealthy",
    "poll_feeds",
    "process_episode",
    "record",
    "send_digests",
    "shows_from_urls",
    "utcnow",
    "work_list",
]
