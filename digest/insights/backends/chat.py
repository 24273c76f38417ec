"""The `openai` backend: any OpenAI-compatible Chat Completions endpoint (OpenAI, Ollama,
vLLM, a llama.cpp server). Every answer is parsed leniently (servers ignore
`response_format`), validated, and grounded against the transcript.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from digest.core.config import Config
from digest.core.errors import ServiceUnavailable
from digest.core.models import Segment, Transcript
from digest.insights.context import EpisodeContext, Outcome, Usage
from digest.insights.grounding import TranscriptIndex, ground
from digest.insights.prompts import Prompt, bounded_schema, defang, load_prompt
from digest.insights.proposals import (
    ExtractionError,
    RawInsight,
    Window,
    parse_answer,
    plan_windows,
)

log = logging.getLogger("digest.extract")
# Longest text or quote a self-hosted server may generate (90 words is about 600 chars).
GRAMMAR_MAX_CHARS = 800


def openai_client(config: Config, base_url: str | None) -> Any:
    """The `openai` client for `base_url` (None: api.openai.com), with the configured
    timeout and retries (429/5xx/timeouts, honouring Retry-After)."""
    from openai import OpenAI

    e = config.extraction
    return OpenAI(
        api_key=config.secrets.openai_api_key or "unused",
        base_url=base_url,
        timeout=e.timeout_seconds,
        max_retries=e.max_retries,
    )


class ChatBackend:
    """Asks a chat model for insights, window by window, and keeps only grounded ones."""

    name = "openai"

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

    @classmethod
    def build(
        cls,
        config: Config,
        prompt: str | None = None,
        client: Any = None,
        throttle: Callable[[], None] | None = None,
    ) -> ChatBackend:
        """The backend for one prompt (default: `[extraction] prompt`); the prompt's front
        matter overrides the config's defaults."""
        return cls.over(config, load_prompt(prompt or config.extraction.prompt,
                                            config.extraction.prompts_dir),
                        config.extraction.base_url or None, client, throttle)  # fmt: skip

    @classmethod
    def over(
        cls,
        config: Config,
        prompt: Prompt,
        base_url: str | None,
        client: Any = None,
        throttle: Callable[[], None] | None = None,
    ) -> ChatBackend:
        """The backend against `base_url` (None: api.openai.com)."""
        e = config.extraction
        client = client or openai_client(config, base_url)
        meta = prompt.meta
        # Servers that turn the schema into a grammar (llama.cpp, vLLM, Ollama) then stop the
        # list at the limit: a small model would otherwise write insights until the token
        # limit. The bounded schema is what is sent, so it is what the version hashes.
        limit = meta.max_insights or e.max_insights_per_window
        chars = GRAMMAR_MAX_CHARS if base_url else None  # not api.openai.com: a grammar server
        prompt = replace(prompt, answer_schema=bounded_schema(prompt.answer_schema, limit, chars))
        return cls(
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
