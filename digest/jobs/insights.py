"""Extraction: transcript to grounded insights, cached by (transcript, prompt, model).

An unchanged prompt re-run makes zero LLM calls; a changed prompt re-extracts
freshly transcribed episodes and those still inside the digest's lookback window,
never the whole archive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from digest.config import Config
from digest.errors import DigestError
from digest.extract import ChatExtractor, EpisodeContext, Outcome, Usage, Window, ground
from digest.extractive import extract_passages, extractive_version
from digest.grounding import TranscriptIndex
from digest.jobs.chapters import load_chapters
from digest.jobs.clock import utcnow
from digest.local_llm import local_base_url
from digest.models import Episode, Insight, Transcript
from digest.prompts import Prompt, bounded_schema, load_prompt
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


def backend_for(config: Config) -> str:
    e = config.extraction
    if e.backend != "auto":
        return e.backend
    return "openai" if config.secrets.openai_api_key or e.base_url else "extractive"


EXTRACTIVE = "extractive"  # the offline backend, usable wherever a prompt name is
# Longest text or quote a self-hosted server may generate (90 words is about 600 chars).
GRAMMAR_MAX_CHARS = 800


def chat_extractor(
    config: Config,
    prompt: Prompt,
    client: Any = None,
    throttle: Callable[[], None] | None = None,
) -> ChatExtractor:
    """The LLM backend for one prompt: its front matter overrides the config defaults."""
    from openai import OpenAI

    e = config.extraction
    base_url = e.base_url or None
    if e.backend == "local":  # llama.cpp in this process, behind the same client
        base_url = local_base_url(e.model, e.local_threads, e.local_context)
    client = client or OpenAI(
        api_key=config.secrets.openai_api_key or "unused",
        base_url=base_url,
        timeout=e.timeout_seconds,
        max_retries=e.max_retries,
    )
    meta = prompt.meta
    # Servers that turn the schema into a grammar (llama.cpp, vLLM, Ollama) then stop the
    # list at the limit: a small model would otherwise write insights until the token
    # limit. The bounded schema is what is sent, so it is what the version hashes.
    limit = meta.max_insights or e.max_insights_per_window
    chars = GRAMMAR_MAX_CHARS if base_url else None  # not api.openai.com: a grammar server
    prompt = replace(prompt, answer_schema=bounded_schema(prompt.answer_schema, limit, chars))
    return ChatExtractor(
        client,
        prompt,
        meta.model or e.model,
        temperature=e.temperature if meta.temperature is None else meta.temperature,
        max_insights=meta.max_insights or e.max_insights_per_window,
        window_tokens=e.window_tokens,
        overlap_tokens=e.overlap_tokens,
        json_retries=e.json_retries,
        max_answer_tokens=e.max_answer_tokens,
        match_threshold=e.match_threshold,
        throttle=throttle,
    )


def active_prompt(config: Config, override: str | None = None) -> str:
    """The prompt in force: an override (the Prefect Variable), else `[extraction] prompt`;
    `extractive` when no LLM is configured."""
    if backend_for(config) == EXTRACTIVE:
        return EXTRACTIVE
    return override or config.extraction.prompt


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
        self.prompt_name = active_prompt(config, prompt)
        self.backend = "openai" if self.prompt_name != EXTRACTIVE else EXTRACTIVE
        if self.backend == "openai":
            loaded = load_prompt(self.prompt_name, config.extraction.prompts_dir)
            self.chat: ChatExtractor | None = chat_extractor(config, loaded, client, throttle)
            self.model = self.chat.model
            self.version = self.chat.version
        else:
            self.chat = None
            self.model = EXTRACTIVE
            self.version = extractive_version()

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
            outcome = self._run(stored.transcript, context, usage)
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
        self.store.insights.save(key, self.backend, outcome.insights, outcome.dropped, now)
        self._mark(episode, "extracted")
        return ExtractResult(
            episode.id,
            episode.title,
            "extracted",
            outcome.insights,
            outcome.dropped,
            len(usage.calls),
        )

    def _run(self, transcript: Transcript, context: EpisodeContext, usage: Usage) -> Outcome:
        if self.chat is not None:
            return self.chat.extract(transcript, context, usage)
        limit = self.config.digest.insights
        boundaries = [c.start for c in context.chapters]
        proposals = extract_passages(transcript, limit, boundaries=boundaries)
        window = Window(1, 1, transcript.segments, 0.0, float("inf"))
        index = TranscriptIndex(transcript)
        threshold = self.config.extraction.match_threshold
        return ground(
            [(p, window) for p in proposals],
            index,
            context,
            self.version,
            self.model,
            threshold,
            usage,
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
        self.store.insights.save(key, self.backend, [], [], now, error=message)
        self.store.episodes.record_failure(episode.id, now, message)
        return ExtractResult(
            episode.id, episode.title, "failed", calls=len(usage.calls), error=message
        )

    def _mark(self, episode: Episode, status: Literal["extracted"]) -> None:
        if episode.status != status:
            self.store.episodes.set_status(episode.id, status, utcnow())
