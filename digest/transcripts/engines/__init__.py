"""Transcription engines: one module each, registered in `digest.core.registry.ENGINES`
under the `[transcription] backend` value that picks it.

An engine is a class with `Options` (a frozen dataclass extending `EngineOptions`
with what only it needs), `configure(config)` (the settings resolved: weights found,
threads chosen) and, built from those options, `transcribe(pcm, progress)`. It runs
in the worker process (`digest.transcripts.worker`), which rebuilds the options from
JSON, so they hold plain values only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from digest.core.config import Config
from digest.core.models import Segment
from digest.core.registry import ENGINES, load
from digest.core.settings import TranscriptionSettings
from digest.transcripts.audio import PCM

Progress = Callable[[float], None]  # seconds of audio transcribed so far


@dataclass(frozen=True)
class EngineOptions:
    """What every engine is asked: which one, which model, and how the file is cut."""

    engine: str  # the registry name
    model: str  # as configured: a name or a path
    language: str = ""  # empty: the engine detects it
    window_seconds: int = 300  # audio per window: bounds memory
    parallel_windows: int = 1  # windows decoded at once (only for engines that allow it)


class Engine(Protocol):
    name: str
    concurrent: bool  # may transcribe several windows at once from different threads

    def transcribe(self, pcm: PCM, progress: Progress) -> tuple[list[Segment], str]: ...


def engine_options(config: Config) -> EngineOptions:
    """The configured engine's options (config errors surface here, before any work)."""
    kind: Any = ENGINES.get(config.transcription.backend)
    options: EngineOptions = kind.configure(config)
    return options


def load_engine(options: EngineOptions) -> Engine:
    engine: Engine = ENGINES.get(options.engine)(options)
    return engine


def request(options: EngineOptions) -> dict[str, Any]:
    """The engine and its options as the worker process receives them (JSON): the engine
    by its module address, so one registered at run time is found there too."""
    return {"engine": ENGINES.address(options.engine), "options": asdict(options)}


def from_request(data: dict[str, Any]) -> tuple[Any, EngineOptions]:
    """The engine class and its options, back from `request`."""
    kind: Any = load(data["engine"])
    options: EngineOptions = kind.Options(**data["options"])
    return kind, options


def default_language(model: str, configured: str) -> str:
    return configured or ("en" if model.endswith(".en") else "")


def cache_key(options: EngineOptions, settings: TranscriptionSettings) -> str:
    """What decides the text, hashed: the key of the transcript cache (identical audio
    with the same key is never transcribed twice). Its fields are the ones stored keys
    were made from, so a transcript stored by an earlier version is still found."""
    decoding = {
        "backend": options.engine,
        "model": options.model,
        "compute_type": settings.compute_type,
        "beam_size": settings.beam_size,
        "vad_filter": settings.vad_filter,
        "batch_size": settings.batch_size,
        "parallel_windows": options.parallel_windows,
        "language": options.language,
        "window_seconds": options.window_seconds,
        "base_url": settings.base_url,
    }
    return hashlib.sha256(json.dumps(decoding, sort_keys=True).encode()).hexdigest()[:16]


def number(value: object) -> float | None:
    """A confidence figure from an engine's answer, if it gave one."""
    return float(value) if isinstance(value, int | float) else None
