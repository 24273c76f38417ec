"""Candidate insights scored against an editor's references: the five insights an
editor would send from a transcript, written beside it as `<transcript>.references.md`.

Recall is the share of references some candidate states; precision the share of
candidates that state some reference. "States" means the similarity measure
(`digest.core.meaning`) puts them at or above its threshold. Matching is within one
transcript: every transcript in the set is about its own subject, and a candidate
from one cannot be credited with another's reference.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, stdev

from digest.core.meaning import Similarity

SUFFIX = ".references.md"


def references_for(transcript: Path) -> list[str]:
    """The references beside a transcript file: one per paragraph; lines starting with
    `#` are the editor's notes. No file: no references (the transcript is unscored)."""
    path = transcript.with_name(transcript.stem + SUFFIX)
    if not path.exists():
        return []
    return parse_references(path.read_text(encoding="utf-8"))


def parse_references(text: str) -> list[str]:
    kept = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", kept) if p.strip()]


@dataclass(frozen=True)
class Match:
    """A candidate and the reference it comes closest to (-1: there were none)."""

    candidate: str
    reference: int
    score: float
    matched: bool


@dataclass(frozen=True)
class Scored:
    """One transcript's candidates against its references."""

    label: str
    references: tuple[str, ...]
    matches: tuple[Match, ...]  # one per candidate, in the candidates' order
    found: tuple[bool, ...]  # one per reference: did some candidate state it?

    @property
    def recall(self) -> float:
        return sum(self.found) / len(self.found) if self.found else 0.0


def score(
    label: str, references: Sequence[str], candidates: Sequence[str], similarity: Similarity
) -> Scored:
    matrix = similarity.matrix(list(candidates), list(references)) if references else []
    matches = []
    for n, text in enumerate(candidates):
        row = matrix[n] if references else []
        best = max(range(len(row)), key=row.__getitem__) if row else -1
        value = row[best] if row else 0.0
        matches.append(Match(text, best, value, bool(row) and value >= similarity.threshold))
    found = tuple(
        any(matrix[c][r] >= similarity.threshold for c in range(len(candidates)))
        for r in range(len(references))
    )
    return Scored(label, tuple(references), tuple(matches), found)


@dataclass(frozen=True)
class SetScore:
    """A prompt's reference scores over the evaluation set."""

    measure: str  # which similarity matched them
    transcripts: tuple[Scored, ...]
    day_recall: float  # the day's top N against the day's references

    @property
    def recall(self) -> float:
        found = [f for t in self.transcripts for f in t.found]
        return sum(found) / len(found) if found else 0.0

    @property
    def precision(self) -> float:
        matches = [m for t in self.transcripts if t.references for m in t.matches]
        return sum(m.matched for m in matches) / len(matches) if matches else 0.0

    @property
    def references(self) -> int:
        return sum(len(t.references) for t in self.transcripts)


def recall_noise(candidate: SetScore, against: SetScore) -> float:
    """How far apart two prompts' recall may be by chance on this set: 1.96 standard
    errors of their per-transcript differences, and never less than one reference.
    A candidate that loses more than this recalls fewer references for real."""
    floor = 1 / max(candidate.references, 1)
    pairs = [
        (a.recall - b.recall)
        for a, b in zip(candidate.transcripts, against.transcripts, strict=True)
        if a.references
    ]
    if len(pairs) < 2:
        return floor
    return max(floor, 1.96 * stdev(pairs) / math.sqrt(len(pairs)))


def day_recall(references: Sequence[str], top: Sequence[str], similarity: Similarity) -> float:
    """The share of the day's references (the five an editor would send from the whole
    set) that the day's selected top N states."""
    if not references:
        return 0.0
    return float(mean(score("day", references, top, similarity).found))
