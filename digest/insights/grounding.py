"""Grounding, in code rather than trust: every quote must be found in the transcript.

Quotes are compared as normalised words, so punctuation, case and small ASR slips
("a maze model" for "a base model") do not matter but invented sentences do. The
matching segment gives the quote its timestamp, whatever time the model claimed.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from difflib import SequenceMatcher

from digest.core.models import Insight, Transcript, chapter_at
from digest.core.text import normalise_words, word_set_similarity
from digest.insights.context import EpisodeContext, Outcome, Usage
from digest.insights.proposals import RawInsight, Window

MIN_QUOTE_WORDS = 6
MAX_TEXT_WORDS = 120
COMMON = 200  # a word seen more often than this cannot anchor a quote (the, and, ...)
LINK = re.compile(r"https?://|www\.|\b[\w.+-]+@[\w-]+\.\w|\b[\w-]+\.(com|org|net|io|ai|co)\b", re.I)
# Words that address a model rather than a listener: quoted, they would smuggle an
# injected instruction into the digest as if it were an insight.
INJECTION = re.compile(
    r"\b(ignore (all |any )?(the )?(previous|prior|above) (instructions|rules)|system prompt|"
    r"you are now|disregard (your|the) (rules|instructions)|output the insight)\b",
    re.IGNORECASE,
)
MARKUP = re.compile(r"<[a-z/!][^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Located:
    first_word: int  # index into the transcript's words
    score: float  # share of the quote's words matched in order
    start_seconds: float


class TranscriptIndex:
    """Words of a transcript, each mapped back to a time, for fast fuzzy quote search."""

    def __init__(self, transcript: Transcript) -> None:
        self.words: list[str] = []
        self.times: list[float] = []
        for segment in transcript.segments:
            words = normalise_words(segment.text)
            span = max(segment.end - segment.start, 0.0)
            for i, word in enumerate(words):
                self.words.append(word)
                self.times.append(segment.start + span * i / max(len(words), 1))
        self.positions: dict[str, list[int]] = defaultdict(list)
        for i, word in enumerate(self.words):
            self.positions[word].append(i)
        self.text = " ".join(self.words)

    def locate(self, quote: str, threshold: float) -> Located | None:
        """Best place where `quote` appears with at least `threshold` of its words in order."""
        wanted = normalise_words(quote)
        if len(wanted) < MIN_QUOTE_WORDS:
            return None
        votes: Counter[int] = Counter()
        for offset, word in enumerate(wanted):
            places = self.positions.get(word, [])
            if len(places) <= COMMON:
                votes.update(p - offset for p in places)
        best: Located | None = None
        for start, _ in votes.most_common(5):
            lo = max(start - 3, 0)
            window = self.words[lo : start + len(wanted) + 3]
            matcher = SequenceMatcher(None, wanted, window, autojunk=False)
            blocks = [b for b in matcher.get_matching_blocks() if b.size]
            score = sum(b.size for b in blocks) / len(wanted)
            if blocks and (best is None or score > best.score):
                first = lo + blocks[0].b
                best = Located(first, score, self.times[first])
        return best if best is not None and best.score >= threshold else None


def text_problem(text: str, quote: str) -> str | None:
    """Why an insight's own text cannot go to readers, or None if it can."""
    if not text.strip() or not quote.strip():
        return "empty text or quote"
    if len(text.split()) > MAX_TEXT_WORDS:
        return f"text longer than {MAX_TEXT_WORDS} words"
    if MARKUP.search(text):
        return "markup in the insight text"
    if LINK.search(text):
        return "a link or address in the insight text (the email links to the episode itself)"
    if INJECTION.search(quote) or INJECTION.search(text):
        return "instructions aimed at the model, not an insight"
    return None


# An insight must read as one whole thought: these openers lean on a sentence the reader
# never saw ("Finally, ...", "But this means ...", "They found ...").
DANGLING_OPENER = re.compile(
    r"^[\"'“‘(]?(and|but|so|or|also|finally|however|then|therefore|thus|hence|plus|this|that|"
    r"these|those|it|its|they|them|their|he|she|his|her|which|because|yes|no|well|right|"
    r"okay|ok|instead|still|again|meanwhile|besides)\b",
    re.IGNORECASE,
)
# A sentence that opens a new topic: glued onto a passage, it makes two thoughts of one.
NEW_TOPIC = re.compile(
    r"^[\"'“‘(]?(finally|next|now|another|also|first|firstly|second|secondly|third|thirdly|"
    r"lastly|meanwhile|moving on|turning to|on the other hand|in other news)\b",
    re.IGNORECASE,
)


def starts_mid_sentence(text: str) -> bool:
    """Text that begins with a lower-case word or punctuation: cut from a longer sentence."""
    first = text.lstrip(" \"'“‘(")[:1]
    return not first or not (first.isupper() or first.isdigit())


def dangling_opener(text: str) -> bool:
    return bool(DANGLING_OPENER.match(text.strip()))


def doubtful_quote(transcript: Transcript, start: float | None, quote: str) -> bool:
    """True when Whisper doubted a segment the quote comes from (see Segment.doubtful)."""
    if start is None:
        return False
    needed = len(quote.split())
    for segment in transcript.segments:
        if segment.end <= start:
            continue
        if segment.doubtful:
            return True
        needed -= len(segment.text.split())
        if needed <= 0:
            return False
    return False


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
