"""What a backend is given and gives back: the episode it reads, the calls it made, and
the grounded insights with what was dropped and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from digest.core.models import Chapter, Episode, Insight, Person


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
