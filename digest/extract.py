"""Insight extraction through any OpenAI-compatible Chat Completions endpoint.

Long transcripts are split into windows. Each window *owns* a stretch of time,
and the owned stretches tile the transcript exactly once; a little of what was said
just before (`overlap_tokens`) is sent as context, but an insight whose quote lies
in the previous stretch is left to the window that owns it. Every answer is parsed leniently
(servers ignore `response_format`), validated, and grounded against the transcript.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from digest.chapters import chapter_at
from digest.errors import DigestError, ServiceUnavailable
from digest.grounding import TranscriptIndex, text_problem, word_set_similarity
from digest.models import Chapter, Episode, Insight, Person, Segment, Transcript
from digest.prompts import Prompt, defang

log = logging.getLogger("digest.extract")
CHARS_PER_TOKEN = 4  # a conservative English average; windows stay under the limit


class ExtractionError(DigestError):
    """The model's answers could not be used for this episode."""


class RawInsight(BaseModel):
    """One insight as a model (or the extractive backend) proposes it, before grounding."""

    text: str
    quote: str
    start: float | None = None
    importance: int = Field(default=5)

    @field_validator("importance", mode="before")
    @classmethod
    def clamp(cls, value: Any) -> int:
        try:
            return max(1, min(10, round(float(value))))
        except (TypeError, ValueError):
            return 5


class Answer(BaseModel):
    insights: list[RawInsight]


@dataclass(frozen=True)
class Window:
    index: int  # 1-based, as the prompt shows it
    count: int
    segments: tuple[Segment, ...]  # what is sent: the owned stretch plus context
    own_start: float  # this window answers for quotes starting in [own_start, own_end)
    own_end: float


def tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def plan_windows(
    segments: Sequence[Segment], window_tokens: int, overlap_tokens: int
) -> list[Window]:
    """Split into owned stretches of at most `window_tokens`, each sent with some context."""
    groups: list[list[int]] = [[]]
    used = 0
    for i, segment in enumerate(segments):
        cost = tokens(segment.text)
        if groups[-1] and used + cost > window_tokens:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += cost
    groups = [g for g in groups if g]
    windows = []
    for n, group in enumerate(groups):
        # Context comes from what was said just before: it explains the owned stretch.
        lo, hi = _extend(segments, group[0], overlap_tokens), group[-1]
        own_start = 0.0 if n == 0 else segments[group[0]].start
        own_end = float("inf") if n == len(groups) - 1 else segments[groups[n + 1][0]].start
        windows.append(Window(n + 1, len(groups), tuple(segments[lo : hi + 1]), own_start, own_end))
    return windows


def _extend(segments: Sequence[Segment], first: int, budget: int) -> int:
    while first > 0 and budget >= tokens(segments[first - 1].text):
        first -= 1
        budget -= tokens(segments[first].text)
    return first


def parse_answer(content: str) -> list[RawInsight]:
    """Find and validate the JSON answer in whatever the server sent back."""
    text = re.sub(r"^```(?:json)?|```$", "", content.strip(), flags=re.MULTILINE).strip()
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            data, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(data, list):
            data = {"insights": data}
        try:
            return Answer.model_validate(data).insights
        except ValidationError as exc:
            raise ExtractionError(
                f"the answer does not match the schema: {exc.errors()[0]['msg']}"
            ) from exc
    raise ExtractionError(f"the answer is not JSON: {content[:80]!r}")


@dataclass
class Usage:
    """Every chat call made for one episode, for the cost report."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def add(self, response: Any, latency: float, outcome: str) -> None:
        usage = getattr(response, "usage", None)
        self.calls.append(
            {
                "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
                "latency_ms": int(latency * 1000),
                "outcome": outcome,
            }
        )


@dataclass(frozen=True)
class EpisodeContext:
    episode_id: str
    text_sha256: str  # of the transcript: part of every insight's identity
    show_title: str
    episode_title: str
    summary: str
    published_at: datetime | None
    people: tuple[Person, ...] = ()  # podcast:person: lets insights say who argued what
    chapters: tuple[Chapter, ...] = ()  # podcast:chapters: titles for the moments quoted

    @classmethod
    def of(
        cls, episode: Episode, text_sha256: str, chapters: tuple[Chapter, ...] = ()
    ) -> EpisodeContext:
        return cls(
            episode.id,
            text_sha256,
            episode.show_title,
            episode.title,
            episode.summary,
            episode.published_at,
            episode.people,
            chapters,
        )


@dataclass
class Outcome:
    insights: list[Insight]
    dropped: list[tuple[str, str]]  # (quote or text, reason)
    usage: Usage


class ChatExtractor:
    """Asks a chat model for insights, window by window, and keeps only grounded ones."""

    def __init__(
        self,
        client: Any,
        prompt: Prompt,
        model: str,
        *,
        temperature: float,
        max_insights: int,
        window_tokens: int,
        overlap_tokens: int,
        json_retries: int,
        match_threshold: float,
        max_answer_tokens: int = 2000,
        throttle: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.prompt = prompt
        self.model = model
        self.version = prompt.version(model)
        self.temperature = temperature
        self.max_insights = max_insights
        self.window_tokens = window_tokens
        self.overlap_tokens = overlap_tokens
        self.json_retries = json_retries
        self.match_threshold = match_threshold
        self.max_answer_tokens = max_answer_tokens
        self.throttle = throttle  # called before every request: a rate limit can wait there

    def extract(self, transcript: Transcript, episode: EpisodeContext, usage: Usage) -> Outcome:
        """Insights for one transcript; every call made (even on failure) lands in `usage`."""
        index = TranscriptIndex(transcript)
        proposals: list[tuple[RawInsight, Window]] = []
        for window in plan_windows(transcript.segments, self.window_tokens, self.overlap_tokens):
            messages = self.prompt.render(
                show_title=episode.show_title,
                episode_title=episode.episode_title,
                episode_summary=defang(episode.summary[:1000]),
                published=episode.published_at.date().isoformat() if episode.published_at else "",
                window=_fenced(window),
                max_insights=self.max_insights,
                people=[{"name": defang(p.name), "role": defang(p.role)} for p in episode.people],
                chapters=[{"start": c.start, "title": defang(c.title)} for c in episode.chapters],
            )
            proposals += [(raw, window) for raw in self._ask(messages, usage)]
        return ground(
            proposals,
            index,
            episode,
            self.version,
            self.model,
            self.match_threshold,
            usage,
        )

    def _ask(self, messages: list[dict[str, str]], usage: Usage) -> list[RawInsight]:
        import openai

        response_format: dict[str, Any] | None = {
            "type": "json_schema",
            "json_schema": {
                "name": "insights",
                "strict": True,
                "schema": dict(self.prompt.answer_schema),
            },
        }
        problem = ""
        budget = self.max_answer_tokens
        attempts = 0
        while attempts <= self.json_retries:
            if self.throttle:
                self.throttle()
            started = time.monotonic()
            try:
                kwargs: dict[str, Any] = (
                    {"response_format": response_format} if response_format else {}
                )
                response = self.client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=self.temperature,
                    max_tokens=budget,
                    **kwargs,
                )
            except openai.BadRequestError as exc:
                if response_format is not None and "response_format" in str(exc):
                    response_format = None  # an older server: ask again, parse leniently
                    continue
                raise ExtractionError(f"the model endpoint refused the request: {exc}") from exc
            except (
                openai.APIConnectionError,  # includes timeouts
                openai.RateLimitError,
                openai.InternalServerError,
            ) as exc:
                raise ServiceUnavailable(
                    f"the model endpoint is unavailable after {self.client.max_retries} "
                    f"retries ({exc}); the episode waits for the next run"
                ) from exc
            except openai.OpenAIError as exc:
                raise ExtractionError(f"the model endpoint failed after retries: {exc}") from exc
            choice = response.choices[0] if response.choices else None
            if choice is not None and choice.finish_reason == "length":
                # Cut off by the token limit: a partial list would look complete. Never
                # parse it; ask again with twice the room, up to four times the budget.
                usage.add(response, time.monotonic() - started, "truncated")
                if budget >= 4 * self.max_answer_tokens:
                    raise ExtractionError(
                        f"the answer was cut off at {budget} tokens even with four times "
                        "[extraction] max_answer_tokens; raise it, or lower window_tokens"
                    )
                budget *= 2
                log.warning("answer cut off by the token limit; asking again with %d", budget)
                continue
            content = (choice.message.content or "") if choice is not None else ""
            try:
                found = parse_answer(content)
            except ExtractionError as exc:
                usage.add(response, time.monotonic() - started, "malformed")
                problem = str(exc)
                attempts += 1
                log.warning("unusable answer (%s); asking again", problem)
                continue
            usage.add(response, time.monotonic() - started, "ok")
            return found[: self.max_insights * 2]
        raise ExtractionError(f"no usable answer after {self.json_retries + 1} tries: {problem}")


def _fenced(window: Window) -> Window:
    segments = tuple(Segment(s.start, s.end, defang(s.text), s.speaker) for s in window.segments)
    return Window(window.index, window.count, segments, window.own_start, window.own_end)


def insight_id(episode: EpisodeContext, version: str, quote: str) -> str:
    material = f"{episode.episode_id}\n{episode.text_sha256}\n{version}\n{quote}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _chapter_title(episode: EpisodeContext, seconds: float) -> str | None:
    chapter = chapter_at(episode.chapters, seconds)
    return chapter.title if chapter else None


def ground(
    proposals: list[tuple[RawInsight, Window]],
    index: TranscriptIndex,
    episode: EpisodeContext,
    version: str,
    model: str,
    threshold: float,
    usage: Usage,
) -> Outcome:
    """Keep what is grounded and owned by its window; drop (and say why) the rest."""
    kept: list[Insight] = []
    dropped: list[tuple[str, str]] = []
    for raw, window in proposals:
        located = index.locate(raw.quote, threshold)
        problem = text_problem(raw.text, raw.quote)
        if located is None:
            dropped.append((raw.quote[:200], "quote not found in the transcript"))
        elif problem:
            dropped.append((raw.text[:200], problem))
        elif not window.own_start <= located.start_seconds < window.own_end:
            continue  # context from a neighbour: that window answers for it
        elif any(word_set_similarity(raw.text, k.text) > 0.6 for k in kept):
            dropped.append((raw.text[:200], "duplicate of another insight"))
        else:
            kept.append(
                Insight(
                    id=insight_id(episode, version, raw.quote),
                    episode_id=episode.episode_id,
                    text=" ".join(raw.text.split()),
                    quote=" ".join(raw.quote.split()),
                    start_seconds=round(located.start_seconds, 1),
                    importance=raw.importance,
                    prompt_version=version,
                    model=model,
                    chapter=_chapter_title(episode, located.start_seconds),
                )
            )
    return Outcome(kept, dropped, usage)
