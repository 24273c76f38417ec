"""Word error rate: how benchmarks and tests judge a transcript against its source text."""

from __future__ import annotations

import re
import unicodedata

NUMBER_WORDS = {"%": " percent ", "&": " and ", "+": " plus "}


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation, so only real word differences count."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    for symbol, word in NUMBER_WORDS.items():
        text = text.replace(symbol, word)
    text = re.sub(r"(?<=\w)[-–—/](?=\w)", " ", text)  # hyphenated words as Whisper writes them
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words; Levenshtein on words."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(hyp, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (word != other))
    return row[-1] / len(ref)
