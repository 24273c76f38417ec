"""Use cases that join a stage to the store: what the CLI commands and Prefect tasks call.

Stages (`feeds`, `transcripts`, `insights`, ...) stay free of persistence; these modules
record their results and turn one item's failure into data, so the batch goes on.
"""

from digest.core.clock import utcnow
from digest.jobs import progress
from digest.jobs.edition import edition_items
from digest.jobs.episode import (
    EpisodeOutcome,
    Failure,
    failures,
    process_episode,
    work_list,
)
from digest.jobs.extraction import Extractor, ExtractResult
from digest.jobs.poll import (
    feed_client,
    fetch,
    newly_unhealthy,
    poll_feeds,
    poll_summary,
    record,
)
from digest.jobs.send import DeliveryIncomplete, SendReport, SendResult, send_digests
from digest.jobs.signup import shows_from_urls
from digest.jobs.status import cost_usd, status_report
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
    "edition_items",
    "failures",
    "feed_client",
    "fetch",
    "newly_unhealthy",
    "poll_feeds",
    "poll_summary",
    "process_episode",
    "progress",
    "record",
    "send_digests",
    "shows_from_urls",
    "status_report",
    "utcnow",
    "work_list",
]
