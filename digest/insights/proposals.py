"""What a backend proposes before grounding: insights with a quote, parsed leniently
from whatever the server sent, and the transcript windows they were asked about.

Long transcripts are split into windows. Each window *owns* a stretch of time, and
the owned stretches tile the transcript exactly once; a little of what was said just
before (`overlap_tokens`) is sent as context, but an insight whose quote lies in the
previous stretch is left to the window that owns it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from digest.core.errors import DigestError
from digest.core.models import Segment

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
