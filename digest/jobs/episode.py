"""One episode taken through the pipeline, and the list of episodes that need it.

This is the only place that knows the order of the steps, what a failure at each
step means, and that an episode is claimed (`digest.jobs.leases`) for the duration,
so two workers never transcribe or extract the same episode at once. `digest
process` runs the steps in this process; the `process-episode` flow runs each as a
Prefect task (with retries) and hands the same steps in here, so the two paths
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.core.errors import DigestError
from digest.core.models import Episode
from digest.jobs import progress
from digest.jobs.extraction import Extractor, ExtractResult
from digest.jobs.leases import Claimed, Leases, dead_here
from digest.jobs.transcription import (
    Fail,
    TranscriptResult,
    TranscriptSteps,
    obtain_transcript,
)
from digest.store import Store

Outcome = Literal["completed", "waiting", "failed", "claimed"]


class EpisodeSteps(TranscriptSteps, Protocol):
    """obtain → transcribe → extract, each of which may raise."""

    def extract(self, episode: Episode) -> ExtractResult: ...


@dataclass(frozen=True)
class EpisodeOutcome:
    """What happened to one episode in a run; `outcome` is what `digest run` reports."""

    episode_id: str
    title: str
    process: TranscriptResult
    extract: ExtractResult | None = None  # None when no transcript was obtained

    @property
    def outcome(self) -> Outcome:
        """failed (the episode's fault), waiting (a service's or the machine's: the next
        run goes on without using an attempt), claimed (another worker is on it), or
        completed."""
        last = self.extract.outcome if self.extract else self.process.outcome
        if last in ("failed", "waiting", "claimed"):
            return last
        return "completed"

    @property
    def error(self) -> str | None:
        return (self.extract.error if self.extract else None) or self.process.error


def process_episode(
    episode: Episode, steps: EpisodeSteps, fail: Fail, leases: Leases
) -> EpisodeOutcome:
    """Claim the episode, obtain a transcript, then extract; every failure is recorded
    on the episode. An episode another worker holds is left to it ("claimed")."""
    try:
        with leases.episode(episode.id):
            # As it stands now: another worker may have finished it since it was listed.
            outcome = _take(leases.store.episodes.get(episode.id), steps, fail)
    except Claimed as exc:
        held = TranscriptResult(episode.id, episode.title, "claimed", error=str(exc))
        outcome = EpisodeOutcome(episode.id, episode.title, held)
    minutes = outcome.process.audio_seconds / 60
    progress.advance("episodes", note=f"{minutes:.0f} min of audio" if minutes else "")
    return outcome


def _take(episode: Episode, steps: EpisodeSteps, fail: Fail) -> EpisodeOutcome:
    processed = obtain_transcript(episode, steps, fail)
    if processed.outcome in ("failed", "waiting"):
        return EpisodeOutcome(episode.id, episode.title, processed)
    try:
        extracted = steps.extract(episode)
    except DigestError as exc:
        if not exc.transient:
            raise
        # The Extractor recorded the wait before raising (an orchestrator's retry
        # condition needs the exception); here it is an outcome, not an error.
        extracted = ExtractResult(episode.id, episode.title, "waiting", error=str(exc))
    return EpisodeOutcome(episode.id, episode.title, processed, extracted)


def work_list(
    store: Store,
    config: Config,
    extractor: Extractor,
    *,
    episode_ids: Sequence[str] = (),
    limit: int | None = None,
    now: datetime | None = None,
) -> list[Episode]:
    """What needs work now: pending episodes and failed ones whose retry is due, then
    transcribed ones whose insights are missing or were made by another prompt; none
    that a live claim shows another worker is on. Named episodes are taken whatever
    their status."""
    if episode_ids:
        return [store.episodes.get(i) for i in episode_ids]
    now = now or utcnow()
    busy = {
        c.name.removeprefix("episode:")
        for c in store.claims.held("episode:", now)
        if not dead_here(c.owner)
    }
    todo = store.episodes.processable(
        max_attempts=config.transcription.max_attempts, now=now, limit=limit
    )
    seen = {e.id for e in todo}
    todo += [e for e in extractor.pending(now) if e.id not in seen]
    return [e for e in todo if e.id not in busy]


@dataclass(frozen=True)
class Failure:
    """A failed episode as operators see it (`digest status`, the poll flow's artifact)."""

    episode_id: str
    title: str
    show: str
    error: str
    attempts: int
    retry_at: datetime | None  # None: not tried again by itself

    @property
    def next_retry(self) -> str:
        if self.retry_at is not None:
            return f"{self.retry_at:%Y-%m-%d %H:%M} UTC"
        return "never: fix the cause, then `digest retry`"


def failures(store: Store, config: Config) -> list[Failure]:
    """Failed episodes, with when (or whether) each is tried again."""
    limit = config.transcription.max_attempts
    return [
        Failure(
            e.id,
            e.title,
            e.show_title,
            e.error or "",
            e.attempts,
            e.retry_at if e.attempts < limit else None,
        )
        for e in store.episodes.list(status="failed")
    ]
