"""Text as words: the one normalisation every comparison uses (grounding quotes, word
error rates, near-duplicate insights), so they all agree on what a word is."""

from __future__ import annotations

import re
import unicodedata

# Symbols Whisper and publishers write either way, spelled out so both compare equal.
NUMBER_WORDS = {"%": " percent ", "&": " and ", "+": " plus "}


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation, so only real word differences count."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    for symbol, word in NUMBER_WORDS.items():
        text = text.replace(symbol, word)
    text = re.sub(r"(?<=\w)[-–—/](?=\w)", " ", text)  # hyphenated words as Whisper writes them
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text)


def word_set_similarity(a: str, b: str) -> float:
    """Overlap of two texts' word sets (Jaccard): near-duplicates score high."""
    x, y = set(normalise_words(a)), set(normalise_words(b))
    return len(x & y) / len(x | y) if x and y else 0.0
