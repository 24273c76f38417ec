"""The editors' workbench: run a prompt on transcripts without touching the digest,
and score prompts side by side on fixed measures computed in code.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.core.errors import DigestError, InvalidInput
from digest.core.meaning import Similarity, same_point
from digest.core.models import DigestItem, Transcript
from digest.core.templating import templates_root
from digest.core.text import word_set_similarity
from digest.edition.select import select_top
from digest.insights import backends
from digest.insights.context import EpisodeContext, Outcome, Usage
from digest.insights.grounding import (
    dangling_opener,
    doubtful_quote,
    starts_mid_sentence,
)
from digest.insights.references import SetScore, day_recall, references_for, score
from digest.jobs.editing import editor_order
from digest.jobs.status import cost_usd
from digest.store import Store
from digest.transcripts.captions import parse_transcript

SPEAKING_RATE = 2.5  # words per second, to place untimed text files on a timeline
ATTRIBUTION = re.compile(
    r"\b(argues?|says?|said|claims?|believes?|suggests?|contends?|according to|thinks?|"
    r"warns?|explains?|notes?|points out|in (his|her|their) view|"
    r"the (host|guest|speaker|author)s?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sample:
    """One transcript to try a prompt on, and the insights an editor would send from it."""

    label: str
    transcript: Transcript
    context: EpisodeContext
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalSet:
    samples: list[Sample]
    day_references: tuple[str, ...] = ()  # the day's five if the set were one day


@dataclass(frozen=True)
class Trial:
    prompt: str
    version: str
    model: str
    sample: Sample
    outcome: Outcome | None
    seconds: float
    error: str | None = None


def from_file(path: Path) -> Sample:
    """A transcript file (VTT, SRT, JSON, HTML or text); untimed text gets estimated times."""
    content = path.read_bytes()
    words = len(content.split())
    try:
        transcript = parse_transcript(content, url=str(path), duration=words / SPEAKING_RATE)
    except DigestError as exc:
        raise InvalidInput(f"{path}: {exc}") from exc
    context = EpisodeContext(path.stem, "", path.parent.name, path.stem, "", None)
    return Sample(path.name, transcript, context, tuple(references_for(path)))


def from_store(store: Store, episode_id: str) -> Sample:
    episode = store.episodes.get(episode_id)
    stored = store.transcripts.get(episode.id)
    if stored is None:
        raise InvalidInput(
            f"episode {episode_id} has no transcript yet; run `digest process` first"
        )
    return Sample(episode.title, stored.transcript, EpisodeContext.of(episode, stored.text_sha256))


def eval_set(folder: Path | None) -> EvalSet:
    """The transcripts of a folder with their references (`<name>.references.md`
    beside each, and `day.references.md` for the day as a whole)."""
    folder = folder or templates_root() / "eval"
    files = sorted(
        p for p in folder.iterdir() if p.suffix in {".txt", ".vtt", ".srt", ".json", ".html"}
    )
    if not files:
        raise InvalidInput(f"{folder}: no transcripts (.txt, .vtt, .srt, .json) to evaluate on")
    return EvalSet([from_file(p) for p in files], tuple(references_for(folder / "day")))


def run_prompt(
    config: Config, name: str, samples: Sequence[Sample], client: object = None
) -> list[Trial]:
    """Extract with one prompt (or a backend that reads none) from each sample; nothing is
    stored."""
    backend = backends.build(config, name, client)
    trials = []
    for sample in samples:
        started = time.monotonic()
        outcome: Outcome | None = None
        error = None
        try:
            outcome = backend.extract(sample.transcript, sample.context, Usage())
        except DigestError as exc:
            error = str(exc)
        elapsed = time.monotonic() - started
        trials.append(Trial(name, backend.version, backend.model, sample, outcome, elapsed, error))
    return trials


def well_formed(text: str) -> bool:
    """2-3 sentences and 25-90 words: the shape of the sample digest's insights."""
    sentences = len(re.findall(r"[.!?](?=\s|$)", text.strip()))
    return 2 <= sentences <= 3 and 25 <= len(text.split()) <= 90


def share(flags: Iterable[bool]) -> float:
    """The share of True among the flags; 0.0 for none."""
    values = list(flags)
    return sum(values) / len(values) if values else 0.0


def measures(config: Config, trials: Sequence[Trial]) -> dict[str, float]:
    """Fixed measures for one prompt over an evaluation set (higher is better unless noted)."""
    outcomes = [t.outcome for t in trials if t.outcome is not None]
    insights = [i for o in outcomes for i in o.insights]
    not_found = sum(
        reason == "quote not found in the transcript" for o in outcomes for _, reason in o.dropped
    )
    proposed = len(insights) + sum(len(o.dropped) for o in outcomes)
    # Within an episode: what a prompt controls. Across episodes the daily selection
    # drops near-duplicates itself, and two eval samples may share source text (the
    # sample podcast reads passages of the corpus scripts).
    duplicates = sum(
        any(
            word_set_similarity(a.text, b.text) > config.digest.similarity_threshold
            for b in o.insights
            if b is not a
        )
        for o in outcomes
        for a in o.insights
    )
    top = top_items(config, trials)
    with_insights = len({i.episode_id for t in trials if t.outcome for i in t.outcome.insights})
    calls = [c for o in outcomes for c in o.usage.calls]
    prompt_tokens = sum(c["prompt_tokens"] for c in calls)
    completion_tokens = sum(c["completion_tokens"] for c in calls)
    model = trials[0].model if trials else ""
    cost = cost_usd(config, model, prompt_tokens, completion_tokens)
    episodes = max(len(trials), 1)
    return {
        "episodes failed": float(sum(t.outcome is None for t in trials)),
        "insights per episode": len(insights) / episodes,
        "grounding rate": (proposed - not_found) / proposed if proposed else 0.0,
        "well-formed share (2-3 sentences, 25-90 words)": mean(
            well_formed(i.text) for i in insights
        )
        if insights
        else 0.0,
        "near-duplicate rate (lower is better)": duplicates / len(insights) if insights else 0.0,
        "spread across episodes (top N)": len({t.insight.episode_id for t in top})
        / min(len(top), with_insights)
        if top
        else 0.0,
        "attributed share": mean(bool(ATTRIBUTION.search(i.text)) for i in insights)
        if insights
        else 0.0,
        "mid-sentence starts (lower is better)": share(
            starts_mid_sentence(i.text) for i in insights
        ),
        "dangling openers (lower is better)": share(dangling_opener(i.text) for i in insights),
        "low-confidence share (lower is better)": share(
            doubtful_quote(t.sample.transcript, i.start_seconds, i.quote)
            for t in trials
            if t.outcome
            for i in t.outcome.insights
        ),
        "tokens per episode": (prompt_tokens + completion_tokens) / episodes,
        "cost per episode (USD)": (cost or 0.0) / episodes,
        "latency per episode (s)": mean(t.seconds for t in trials) if trials else 0.0,
    }


def top_items(
    config: Config, trials: Sequence[Trial], editor: str | None = None
) -> list[DigestItem]:
    """The day's selection if the set were one day's episodes, as the digest picks it
    (with `editor`, the day's editor pass of that name orders it; nothing is cached)."""
    items = [
        DigestItem(i, t.sample.context.show_title, t.sample.label, "", "", None)
        for t in trials
        if t.outcome
        for i in t.outcome.insights
    ]
    d = config.digest
    same = same_point(d.similarity_threshold)
    choice = None
    if editor:
        choice = editor_order(
            config, "the evaluation set", items, d.insights, same,
            cache=None, now=utcnow(), prompt=editor,
        )  # fmt: skip
    return select_top(
        items,
        count=d.insights,
        max_per_episode=d.max_per_episode,
        similarity=d.similarity_threshold,
        same=same,
        order=choice.order if choice else None,
    )


def reference_scores(
    config: Config,
    trials: Sequence[Trial],
    day: Sequence[str],
    similarity: Similarity,
    editor: str | None = None,
) -> SetScore:
    """Each transcript's candidates against its references, and the day's top N against
    the day's references."""
    scored = tuple(
        score(
            t.sample.label,
            t.sample.references,
            [i.text for i in t.outcome.insights] if t.outcome else [],
            similarity,
        )
        for t in trials
    )
    top = [i.insight.text for i in top_items(config, trials, editor)]
    return SetScore(similarity.name, scored, day_recall(day, top, similarity))


REFERENCE_MEASURES = ("reference recall", "reference precision", "day's top N: reference recall")


def with_references(found: dict[str, float], scores: SetScore) -> dict[str, float]:
    """The measures with the reference scores first (what an editor reads first)."""
    if not scores.references:
        return found
    values = (scores.recall, scores.precision, scores.day_recall)
    return {**dict(zip(REFERENCE_MEASURES, values, strict=True)), **found}


GATES = ("grounding rate", "well-formed share (2-3 sentences, 25-90 words)")


def worse_on_gates(
    candidate: dict[str, float],
    active: dict[str, float],
    recall_margin: float = 0.0,
    day_margin: float = 0.0,
) -> list[str]:
    """Measures on which the candidate is worse than the active prompt: they block a
    switch. Reference recall (and the day's top-N recall) count only when lower by more
    than the set's noise."""
    worse = [m for m in GATES if candidate[m] < active[m] - 1e-9]
    recall, _, day = REFERENCE_MEASURES
    for measure, margin in ((recall, recall_margin), (day, day_margin)):
        lower = candidate.get(measure, 0.0) < active.get(measure, 0.0) - margin - 1e-9
        if measure in candidate and measure in active and lower:
            worse.append(measure)
    return worse
