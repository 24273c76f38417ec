"""Extraction: transcript to grounded insights, cached by (transcript, prompt, model).

An unchanged prompt re-run makes zero LLM calls; a changed prompt re-extracts
freshly transcribed episodes and those still inside the digest's lookback window,
never the whole archive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.core.errors import DigestError
from digest.core.models import Episode, Insight
from digest.insights import backends
from digest.insights.context import EpisodeContext, Usage
from digest.jobs import progress
from digest.jobs.chapter_files import load_chapters
from digest.store import Store

log = logging.getLogger("digest.extract")


@dataclass(frozen=True)
class ExtractResult:
    episode_id: str
    title: str
    outcome: Literal["extracted", "cached", "failed", "waiting"]  # waiting: endpoint down
    insights: list[Insight] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    calls: int = 0
    error: str | None = None


class Extractor:
    """Extracts episodes one by one with one client and one prompt."""

    def __init__(
        self,
        store: Store,
        config: Config,
        client: Any = None,
        *,
        throttle: Callable[[], None] | None = None,
        prompt: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.prompt_name = backends.active_prompt(config, prompt)
        self.backend = backends.build(config, self.prompt_name, client, throttle)
        self.model = self.backend.model
        self.version = self.backend.version

    def pending(self, now: datetime | None = None) -> list[Episode]:
        """Transcribed episodes, and extracted ones in the lookback window on another key."""
        now = now or utcnow()
        since = now - timedelta(hours=self.config.digest.lookback_hours)
        todo = []
        for episode in self.store.episodes.list(status="transcribed") + self.store.episodes.list(
            status="extracted"
        ):
            if episode.status == "extracted" and episode.discovered_at < since:
                continue
            stored = self.store.transcripts.get(episode.id)
            key = (episode.id, stored.text_sha256 if stored else "", self.version, self.model)
            if stored and not self.store.insights.has_extraction(key):
                todo.append(episode)
        return todo

    def extract(self, episode: Episode, *, force: bool = False) -> ExtractResult:
        """Extract one episode; failures are recorded on it and returned, not raised."""
        stored = self.store.transcripts.get(episode.id)
        if stored is None:
            message = f"{episode.title!r}: no transcript yet; run `digest process` first"
            return ExtractResult(episode.id, episode.title, "failed", error=message)
        key = (episode.id, stored.text_sha256, self.version, self.model)
        if not force and self.store.insights.has_extraction(key):
            self._mark(episode, "extracted")
            return ExtractResult(episode.id, episode.title, "cached")
        context = EpisodeContext.of(
            episode, stored.text_sha256, load_chapters(episode, self.config)
        )
        usage = Usage()
        try:
            outcome = self.backend.extract(stored.transcript, context, usage)
        except DigestError as exc:
            message = f"{episode.title!r}: extraction failed: {exc}"
            if exc.transient:
                return self._waiting(episode, usage, message)
            return self._failed(episode, key, usage, message)
        except Exception as exc:  # a library surprise still fails only this episode
            log.exception("unexpected error extracting %s", episode.id)
            return self._failed(episode, key, usage, f"{episode.title!r}: unexpected {exc!r}")
        now = utcnow()
        self.store.insights.record_calls(episode.id, self.model, self.version, usage.calls, now)
        self.store.insights.save(key, self.backend.name, outcome.insights, outcome.dropped, now)
        self._mark(episode, "extracted")
        progress.advance("insights", len(outcome.insights))
        return ExtractResult(
            episode.id,
            episode.title,
            "extracted",
            outcome.insights,
            outcome.dropped,
            len(usage.calls),
        )

    def _waiting(self, episode: Episode, usage: Usage, message: str) -> ExtractResult:
        """The endpoint is down, not the episode: no attempt used, no failed extraction
        recorded; it stays transcribed, so the next run (or Prefect's retry) picks it up."""
        now = utcnow()
        self.store.insights.record_calls(episode.id, self.model, self.version, usage.calls, now)
        self.store.episodes.set_status(episode.id, "transcribed", now, error=message)
        log.warning("%s", message)
        return ExtractResult(
            episode.id, episode.title, "waiting", calls=len(usage.calls), error=message
        )

    def _failed(
        self, episode: Episode, key: tuple[str, str, str, str], usage: Usage, message: str
    ) -> ExtractResult:
        now = utcnow()
        self.store.insights.record_calls(episode.id, self.model, self.version, usage.calls, now)
        self.store.insights.save(key, self.backend.name, [], [], now, error=message)
        self.store.episodes.record_failure(episode.id, now, message)
        return ExtractResult(
            episode.id, episode.title, "failed", calls=len(usage.calls), error=message
        )

    def _mark(self, episode: Episode, status: Literal["extracted"]) -> None:
        if episode.status != status:
            self.store.episodes.set_status(episode.id, status, utcnow())
