"""The offline extractive backend on the corpus scripts, and the pure daily selection."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from digest.extractive import clean, extract_passages
from digest.grounding import TranscriptIndex, word_set_similarity
from digest.models import DigestItem, Insight
from digest.select import select_top
from tests.support.seed import corpus_transcript

SCRIPTS = ["kimi-k2", "mercury-2", "qwen3-coder-flash", "qwen3.5-122b-a10b"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_extractive_picks_grounded_self_contained_distinct_passages(name: str) -> None:
    transcript = corpus_transcript(name)
    passages = extract_passages(transcript, 5)
    assert 3 <= len(passages) <= 5
    index = TranscriptIndex(transcript)
    for p in passages:
        assert p.text == p.quote, "verbatim: the passage is its own quote"
        assert index.locate(p.quote, 0.85) is not None
        words = len(p.text.split())
        sentences = len(re.findall(r"[.!?](?=\s|$)", p.text))
        assert 25 <= words <= 90 and 2 <= sentences <= 3, p.text
        assert not re.match(r"(And|But|So|This|That|It|They)\b", p.text), "does not lean on context"
        assert p.start is not None and 1 <= p.importance <= 10
    for i, a in enumerate(passages):
        for b in passages[i + 1 :]:
            assert word_set_similarity(a.text, b.text) <= 0.35
    assert passages == extract_passages(transcript, 5), "deterministic"


def test_headings_are_not_glued_to_sentences() -> None:
    passages = extract_passages(corpus_transcript("mercury-2"), 5)
    assert not any("software engineer (distributed" in p.text.lower() for p in passages)


def test_disfluencies_are_cleaned() -> None:
    assert (
        clean("So, um, the the model uh learns, you know, patterns .")
        == "So, the model learns, patterns."
    )


def item(episode: str, importance: int, text: str, n: int = 0) -> DigestItem:
    insight = Insight(f"{episode}-{n}", episode, text, text, float(n), importance, "v1", "m")
    return DigestItem(
        insight, "Show", f"Episode {episode}", "", "", datetime(2026, 11, 20, tzinfo=UTC)
    )


def test_selection_takes_the_most_important_with_at_most_two_per_episode() -> None:
    candidates = [
        item("a", 10, "Batteries earn most of their money during rare price spikes", 1),
        item("a", 9, "Heat pumps work well in cold climates when sized properly", 2),
        item("a", 8, "Transmission lines take a decade to permit in most countries", 3),
        item("b", 7, "Interest rates decide which solar farms get built", 1),
        item("c", 6, "Nuclear costs fall only when the same design is built repeatedly", 1),
        item("d", 5, "Demand response is cheaper than peaker plants for short peaks", 1),
    ]
    top = select_top(candidates, count=5, max_per_episode=2, similarity=0.5)
    assert [t.insight.id for t in top] == ["a-1", "a-2", "b-1", "c-1", "d-1"]
    assert select_top(list(reversed(candidates)), count=5, max_per_episode=2, similarity=0.5) == top


def test_near_duplicates_are_skipped_and_fewer_beats_filler() -> None:
    candidates = [
        item("a", 9, "Grid batteries earn most of their money during rare price spikes"),
        item(
            "b", 8, "Grid batteries earn most of their money during rare price spikes each year", 1
        ),
        item("c", 3, "Demand response is cheaper than peaker plants for short peaks", 1),
    ]
    top = select_top(candidates, count=5, max_per_episode=2, similarity=0.5)
    assert [t.insight.episode_id for t in top] == ["a", "c"]
