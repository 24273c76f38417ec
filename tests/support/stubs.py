"""An engine, a backend and a channel written outside the library, the way a plug-in
author would write one: each is a class and one registry entry. `test_seams.py`
registers them and runs the pipeline through them.

The engine runs in the Whisper worker process, which imports it by its address
("tests.support.stubs:StubEngine"), so this module imports only what a worker may.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from digest.core.config import Config
from digest.core.models import Edition, Endpoint, Segment, Subscriber, Transcript
from digest.insights.context import EpisodeContext, Outcome, Usage
from digest.insights.grounding import TranscriptIndex, ground
from digest.insights.proposals import RawInsight, Window
from digest.transcripts.audio import PCM
from digest.transcripts.engines import EngineOptions, Progress

SAMPLE_RATE = 16_000
# What the stub engine "hears": three sentences, one per third of the audio.
SCRIPT = (
    "Stub engines hear the same three sentences in every file.",
    "Tide pools keep their heat long after the sun goes down over the bay.",
    "A registry entry is all a new engine needs to be picked from the config file.",
)


@dataclass(frozen=True)
class StubOptions(EngineOptions):
    shout: bool = False  # an engine's own option, carried to the worker as JSON


class StubEngine:
    name = "stub"
    concurrent = False
    Options = StubOptions

    @staticmethod
    def configure(config: Config) -> StubOptions:
        t = config.transcription
        return StubOptions(engine=t.backend, model=t.model, window_seconds=t.window_seconds)

    def __init__(self, options: StubOptions) -> None:
        self.options = options

    def transcribe(self, pcm: PCM, progress: Progress) -> tuple[list[Segment], str]:
        seconds = len(pcm) / SAMPLE_RATE
        step = seconds / len(SCRIPT)
        segments = [
            Segment(n * step, (n + 1) * step, text.upper() if self.options.shout else text)
            for n, text in enumerate(SCRIPT)
        ]
        progress(seconds)
        return segments, "en"


class StubBackend:
    """Proposes one insight per transcript segment that mentions `keyword`; grounding is
    the library's, as for every backend."""

    name = "stub"
    uses_prompts = False
    keyword = "registry"

    def __init__(self, config: Config) -> None:
        self.model = "stub-model"
        self.version = "stub-v1"
        self.threshold = config.extraction.match_threshold

    @classmethod
    def build(
        cls, config: Config, prompt: str | None = None, client: Any = None, throttle: Any = None
    ) -> StubBackend:
        return cls(config)

    def extract(self, transcript: Transcript, episode: EpisodeContext, usage: Usage) -> Outcome:
        window = Window(1, 1, transcript.segments, 0.0, float("inf"))
        proposals = [
            RawInsight(
                text=f"The stub backend found this in {episode.episode_title}: {s.text}",
                quote=s.text,
                importance=9,
            )
            for s in transcript.segments
            if self.keyword in s.text.lower()
        ]
        index = TranscriptIndex(transcript)
        pairs = [(p, window) for p in proposals]
        return ground(pairs, index, episode, self.version, self.model, self.threshold, usage)


class StubChannel:
    """Keeps every copy it is handed, in memory, as a webhook's receiver would."""

    name = "stub"
    # (reader, date, delivery id, insight texts), kept across instances: one per send
    received: ClassVar[list[tuple[str, str, str, tuple[str, ...]]]] = []

    def __init__(self, config: Config) -> None:
        self.config = config
        self.count = 0

    @property
    def written(self) -> list[Path]:
        return []

    def new_delivery_id(self) -> str:
        self.count += 1
        return f"stub-{self.count}"

    def deliver(
        self, edition: Edition, reader: Subscriber, delivery_id: str, endpoint: Endpoint
    ) -> None:
        texts = tuple(item.insight.text for item in edition.items)
        StubChannel.received.append((reader.email, edition.date, delivery_id, texts))

    def close(self) -> None:
        pass
