"""Extraction backends: one module each, registered in `digest.core.registry.BACKENDS`
under the `[extraction] backend` value that picks it.

A backend is a class with `build(config, prompt, client, throttle)` and, once built,
`name` (stored with each extraction), `model` and `version` (with the transcript,
the key of the extraction cache) and `extract(transcript, episode, usage)`, which
returns grounded insights. The LLM backends use the prompt templates editors own; a
backend with `uses_prompts = False` (the offline one) is itself a prompt name for
`digest prompts`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from digest.core.config import Config
from digest.core.models import Transcript
from digest.core.registry import BACKENDS
from digest.insights.context import EpisodeContext, Outcome, Usage


class Backend(Protocol):
    name: str
    model: str
    version: str

    def extract(self, transcript: Transcript, episode: EpisodeContext, usage: Usage) -> Outcome:
        """Grounded insights; every model call made, even on failure, lands in `usage`."""
        ...


LLM = "openai"  # what `auto` picks when a key or endpoint is set
OFFLINE = "extractive"  # ... and when neither is


def configured(config: Config) -> str:
    """The backend in force: `[extraction] backend`, where `auto` means the LLM if a key
    or an endpoint is set, else the offline one."""
    e = config.extraction
    if e.backend != "auto":
        return e.backend
    return LLM if config.secrets.openai_api_key or e.base_url else OFFLINE


def promptless(name: str) -> bool:
    """True for a backend that reads no prompt: its name stands where a prompt's would."""
    return name in BACKENDS and not getattr(BACKENDS.get(name), "uses_prompts", True)


def active_prompt(config: Config, override: str | None = None) -> str:
    """What `digest prompts` calls the prompt in force: the backend's own name when it
    reads none, else the override (the Prefect Variable) or `[extraction] prompt`."""
    name = configured(config)
    if promptless(name):
        return name
    return override or config.extraction.prompt


def build(
    config: Config,
    prompt: str | None = None,
    client: Any = None,
    throttle: Callable[[], None] | None = None,
) -> Backend:
    """The configured backend, reading `prompt` (a name from `active_prompt`, which may
    also name a promptless backend)."""
    name = configured(config)
    if prompt and promptless(prompt):
        name = prompt
    elif prompt and promptless(name):  # a prompt asked for where none is read: the LLM's
        name = LLM
    kind: Any = BACKENDS.get(name)
    backend: Backend = kind.build(config, None if promptless(name) else prompt, client, throttle)
    return backend
