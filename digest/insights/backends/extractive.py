"""The offline extractive backend: no network, no model, still an insight list.

It scores every run of 2-3 consecutive sentences by how central it is to the
episode (LexRank: PageRank over TF-IDF cosine similarity of sentences) and how
much it claims (numbers, causal words, definitions; not questions, not filler, not
sentences that lean on a previous one), then picks the best runs that do not
overlap or repeat each other. Passages are kept verbatim (minus disfluencies), so
they are their own quotes.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from digest.core.config import Config
from digest.core.models import Person, Transcript
from digest.core.text import normalise_words, word_set_similarity
from digest.insights.context import EpisodeContext, Outcome, Usage
from digest.insights.grounding import (
    LINK,
    MARKUP,
    NEW_TOPIC,
    TranscriptIndex,
    dangling_opener,
    ground,
    starts_mid_sentence,
)
from digest.insights.proposals import RawInsight, Window

# Bump when the algorithm changes. v4: no_speech_prob alone is no doubt; v5: speaker
# labels are cut out of the speech, and each passage says whose it is.
VERSION = "extractive-v5"
STOPWORDS = frozenset(
    """a an the and or but if then so of to in on at by for with from as is are was were be been
    being it its this that these those there here i you he she we they them his her our your their
    me my us do does did not no yes just very really also can could would should will may might
    have has had what which who whom when where why how than too more most some any all about into
    over out up down like one two get got make made going go know think say said well""".split()  # noqa: SIM905
)
FILLERS = re.compile(r"\b(?:um+|uh+|er+|erm|hmm+|you know|i mean)\b,?\s*", re.IGNORECASE)
REPEAT = re.compile(r"\b(\w+)(\s+\1\b)+", re.IGNORECASE)
CLAIM = re.compile(
    r"\b(because|means?|therefore|so that|which is why|the key|the real|the core|instead|"
    r"rather than|not just|is|are|lets? you|forces?|depends?|predicts?|scales?)\b",
    re.IGNORECASE,
)


# "JANE DOE:", "Host:", "Dr. Ada Lovelace:" at the start of a transcript's paragraph: who
# speaks, not what they say.
SPEAKER_LABEL = re.compile(
    r"^(?:\[|\()?((?:(?:Dr|Mr|Ms|Mrs|Prof)\.\s)?[A-Z][\w'’.-]*(?:\s[A-Z][\w'’.-]*){0,2})"
    r"(?:\]|\))?:\s+(?=\S)"
)
MAX_PASSAGE_WORDS = 84  # the attribution ("On <show>, host <name> argues:") comes on top


@dataclass(frozen=True)
class Sentence:
    text: str
    start: float
    complete: bool = True  # ends with . ! or ? (the transcript's last words may not)
    doubtful: bool = False  # Whisper doubted a segment it came from (Segment.doubtful)
    speaker: str = ""  # who said it, when the transcript names voices


def speaker_of(text: str, known: str = "") -> tuple[str, str]:
    """(speaker, speech): a leading label like "Jane Doe:" is cut out of the speech."""
    match = SPEAKER_LABEL.match(text)
    if match is None:
        return known, text
    return match.group(1), text[match.end() :]


def clean(text: str) -> str:
    """Drop fillers and stutters; keep every content word in order."""
    text = FILLERS.sub("", text)
    text = REPEAT.sub(r"\1", text)
    text = re.sub(r",(\s*,)+", ",", text)
    return re.sub(r"\s+([,.!?;:])", r"\1", re.sub(r"\s+", " ", text)).strip()


def sentences(transcript: Transcript) -> list[Sentence]:
    """Sentences across segment boundaries, each with the time of its first word."""
    found: list[Sentence] = []
    words: list[str] = []
    start = 0.0
    doubtful = False
    speaker = ""
    segments = transcript.segments
    for n, segment in enumerate(segments):
        labelled, speech = speaker_of(segment.text.strip(), segment.speaker)
        if labelled != speaker and words:  # a new voice ends the sentence left open
            found.append(Sentence(clean(" ".join(words)), start, False, doubtful, speaker))
            words = []
        speaker = labelled
        parts = speech.split()
        following = segments[n + 1].text.lstrip()[:1] if n + 1 < len(segments) else ""
        if not words and _is_heading(parts, following):
            continue
        span = max(segment.end - segment.start, 0.0)
        for i, word in enumerate(parts):
            if not words:
                start = segment.start + span * i / max(len(parts), 1)
                doubtful = False
            words.append(word)
            doubtful = doubtful or segment.doubtful
            if re.search(r"[.!?][\"”’)]*$", word) and not re.fullmatch(
                r"(e\.g|i\.e|etc|vs|mr|dr|ms)\.", word, re.I
            ):
                found.append(Sentence(clean(" ".join(words)), start, True, doubtful, speaker))
                words = []
    if words:
        found.append(Sentence(clean(" ".join(words)), start, False, doubtful, speaker))
    return [s for s in found if len(s.text.split()) >= 4]


def readable(run: Sequence[Sentence]) -> bool:
    """A passage an editor would pick: it starts at a sentence start without leaning on
    what came before, ends at a sentence end, keeps to one topic, and Whisper did not
    doubt any of it."""
    first, last = run[0], run[-1]
    return not (
        starts_mid_sentence(first.text)
        or dangling_opener(first.text)
        or not last.complete
        or (len(run) > 1 and NEW_TOPIC.match(last.text))
        or any(s.doubtful for s in run)
        or len({s.speaker for s in run}) > 1  # two voices: an exchange, not one view
    )


def _is_heading(parts: list[str], following: str) -> bool:
    """A short line without final punctuation before a capitalised one: a title, not speech."""
    return 0 < len(parts) <= 12 and not re.search(r"[.!?:;,]$", parts[-1]) and following.isupper()


def centrality(texts: list[str]) -> np.ndarray:
    """LexRank: PageRank over the TF-IDF cosine-similarity graph of sentences."""
    docs = [[w for w in normalise_words(t) if w not in STOPWORDS and len(w) > 2] for t in texts]
    vocabulary = {w: i for i, w in enumerate(sorted({w for d in docs for w in d}))}
    if not vocabulary:
        return np.ones(len(texts)) / max(len(texts), 1)
    df = Counter(w for d in docs for w in set(d))
    matrix = np.zeros((len(docs), len(vocabulary)))
    for row, doc in enumerate(docs):
        for word, count in Counter(doc).items():
            matrix[row, vocabulary[word]] = count * math.log(len(docs) / df[word] + 1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.where(norms == 0, 1, norms)
    similarity = matrix @ matrix.T
    np.fill_diagonal(similarity, 0.0)
    rows = similarity.sum(axis=1, keepdims=True)
    transition = np.where(rows > 0, similarity / np.where(rows == 0, 1, rows), 1 / len(docs))
    rank = np.ones(len(docs)) / len(docs)
    for _ in range(50):
        rank = 0.15 / len(docs) + 0.85 * transition.T @ rank
    return np.asarray(rank / rank.max(), dtype=np.float64)


def informativeness(sentence: str) -> float:
    words = sentence.split()
    score = 0.25 * min(len(CLAIM.findall(sentence)), 3)
    score += 0.3 if re.search(r"\d", sentence) else 0.0
    score -= 0.6 if sentence.rstrip().endswith("?") else 0.0
    score -= 0.3 if len(words) < 8 else 0.0
    score -= 0.3 if len(words) > 45 else 0.0
    return score


def extract_passages(
    transcript: Transcript,
    max_insights: int,
    *,
    boundaries: Sequence[float] = (),
    show: str = "",
    people: Sequence[Person] = (),
) -> list[RawInsight]:
    """The best self-contained 2-3 sentence passages, verbatim, best first, each naming
    its show and speaker (`attributed`). A passage never crosses a boundary (a chapter
    start): one passage, one topic."""
    items = sentences(transcript)
    if len(items) < 2:
        return []
    cuts = sorted(boundaries)
    part = [bisect.bisect_right(cuts, s.start) for s in items]  # chapter of each sentence
    central = centrality([s.text for s in items])
    info = np.array([informativeness(s.text) for s in items])
    candidates: list[tuple[float, int, int]] = []
    for first in range(len(items)):
        for size in (2, 3):
            last = first + size
            text = " ".join(s.text for s in items[first:last])
            if last > len(items) or not 25 <= len(text.split()) <= MAX_PASSAGE_WORDS:
                continue
            if part[first] != part[last - 1] or not readable(items[first:last]):
                continue  # a chapter starts inside, or it would not read as one thought
            score = float(central[first:last].mean() + info[first:last].mean())
            candidates.append((score, first, last))
    candidates.sort(key=lambda c: (-c[0], c[1]))
    chosen: list[tuple[float, int, int, str]] = []
    for score, first, last in candidates:
        text = " ".join(s.text for s in items[first:last])
        overlaps = any(first < b and a < last for _, a, b, _ in chosen)
        similar = any(word_set_similarity(text, t) > 0.35 for *_, t in chosen)
        if not overlaps and not similar:
            chosen.append((score, first, last, text))
        if len(chosen) == max_insights:
            break
    top = chosen[0][0] if chosen else 1.0
    return [
        RawInsight(
            text=attributed(text, items[first].speaker, show, people),
            quote=text,
            start=items[first].start,
            importance=max(1, min(9, round(9 * score / top))) if top > 0 else 5,
        )
        for score, first, _, text in chosen
    ]


def attributed(passage: str, speaker: str, show: str, people: Sequence[Person]) -> str:
    """The passage as the digest prints it: naming its show, and whose view it is when
    the transcript labels the voice or the feed names a sole host (podcast:person).
    With guests and no label, who spoke is unknown and the passage says no more."""
    show, speaker = _plain(show), _plain(speaker)
    named = {p.name.casefold(): p for p in people}
    hosts = [p.name for p in people if p.role.casefold() == "host"]
    who = ""
    if speaker:  # "ALICE:" in the transcript is the feed's host Alice
        person = named.get(speaker.casefold())
        kind = person.role.casefold() if person else ""
        who = f"{kind} {person.name}" if person and kind in ("host", "guest") else speaker
    elif len(hosts) == 1 and len(people) == 1:
        who = f"host {hosts[0]}"
    if not show:
        return f"{who[:1].upper()}{who[1:]} argues: {passage}" if who else passage
    return f"On {show}, {who} argues: {passage}" if who else f"On {show}: {passage}"


def _plain(name: str) -> str:
    """A show's or speaker's name as words the insight may carry: a feed's markup or a
    web address in its title would get the whole insight refused (grounding.text_problem)."""
    name = MARKUP.sub("", name)
    return " ".join(w for w in name.split() if not LINK.search(w)).strip(" :,;-")


def extractive_version() -> str:
    return hashlib.sha256(VERSION.encode()).hexdigest()[:12]


class ExtractiveBackend:
    """The offline backend: no network, no model; its passages are their own quotes, and
    they are grounded like a model's."""

    name = "extractive"
    uses_prompts = False  # `digest prompts eval extractive` names the backend itself

    def __init__(self, config: Config) -> None:
        self.model = "extractive"
        self.version = extractive_version()
        self.limit = config.digest.insights
        self.threshold = config.extraction.match_threshold

    @classmethod
    def build(
        cls, config: Config, prompt: str | None = None, client: Any = None, throttle: Any = None
    ) -> ExtractiveBackend:
        return cls(config)

    def extract(self, transcript: Transcript, episode: EpisodeContext, usage: Usage) -> Outcome:
        boundaries = [c.start for c in episode.chapters]
        proposals = extract_passages(
            transcript,
            self.limit,
            boundaries=boundaries,
            show=episode.show_title,
            people=episode.people,
        )
        window = Window(1, 1, transcript.segments, 0.0, float("inf"))
        index = TranscriptIndex(transcript)
        return ground(
            [(p, window) for p in proposals],
            index,
            episode,
            self.version,
            self.model,
            self.threshold,
            usage,
        )
