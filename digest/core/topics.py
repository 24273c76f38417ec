"""A reader's topics: words and quoted phrases to follow across every show, and
`-words` to keep out, written the way search boxes taught everyone
(`"battery storage" grid -crypto`).

An insight matches when its text, its episode's title or its chapter names a topic
(whole words, any case, a plural `s`/`es` allowed); an insight that names an
excluded word is left out of the reader's editions altogether.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from digest.core.errors import InvalidInput

if TYPE_CHECKING:  # models imports this module: a reader's topics are part of the reader
    from digest.core.models import DigestItem

MAX_CHARS = 500  # a long search query, not a document
MAX_TERMS = 20
WORD = re.compile(r"\w", re.UNICODE)
# A quoted phrase (its sign outside the quotes), else a run of non-spaces; a quote left
# open is read as a word, as search boxes do.
TOKEN = re.compile(r'(-?)"([^"]*)"|(\S+)')


@dataclass(frozen=True)
class Topics:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    only: bool = False  # a day with no match sends nothing

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    @property
    def text(self) -> str:
        """The canonical spelling, as stored and shown: phrases quoted, exclusions last."""
        return " ".join([_spell(t) for t in self.include] + ["-" + _spell(t) for t in self.exclude])

    @property
    def key(self) -> str:
        """Part of the edition key: readers with the same topics share one edition."""
        if not self:
            return ""
        digest = hashlib.sha256(f"{self.text}\n{self.only}".encode()).hexdigest()[:12]
        return ("o" if self.only else "t") + digest

    @cached_property
    def _include(self) -> list[re.Pattern[str]]:
        return [_pattern(t) for t in self.include]

    @cached_property
    def _exclude(self) -> list[re.Pattern[str]]:
        return [_pattern(t) for t in self.exclude]

    def matches(self, item: DigestItem) -> bool:
        """The item names one of the topics."""
        text = _haystack(item)
        return any(p.search(text) for p in self._include)

    def excludes(self, item: DigestItem) -> bool:
        """The item names a word the reader keeps out."""
        text = _haystack(item)
        return any(p.search(text) for p in self._exclude)


NO_TOPICS = Topics()  # a reader who follows none: the shows' top insights


def parse_topics(text: str | None, only: bool = False) -> Topics:
    """`text` as a reader typed it; raises InvalidInput saying what to change."""
    text = (text or "").strip()
    if len(text) > MAX_CHARS:
        raise InvalidInput(f"topics: at most {MAX_CHARS} characters (got {len(text)})")
    if "\x00" in text:
        raise InvalidInput("topics: not text")
    include: list[str] = []
    exclude: list[str] = []
    for sign, phrase, word in TOKEN.findall(text):
        negative = bool(sign) or word.startswith("-")
        term = " ".join((phrase or word.lstrip("-")).replace('"', " ").split()).casefold()
        if not WORD.search(term):
            continue  # a lone "-" or punctuation: nothing to match
        target = exclude if negative else include
        if term not in target:
            target.append(term)
    if len(include) + len(exclude) > MAX_TERMS:
        raise InvalidInput(f"topics: at most {MAX_TERMS} words or phrases")
    if only and not include:
        raise InvalidInput("topics: “only my topics” needs at least one topic to follow")
    return Topics(tuple(include), tuple(exclude), only)


def _spell(term: str) -> str:
    return f'"{term}"' if " " in term else term


def _pattern(term: str) -> re.Pattern[str]:
    """Whole words, any run of spaces between them, the last one's plural allowed."""
    *words, last = [re.escape(w) for w in term.split()]
    if re.fullmatch(r"\w+[^aeiou\W]y", last):
        last = last[:-1] + "(?:y|ies)"  # battery, batteries
    else:
        last += "(?:e?s)?"  # grid, grids; tax, taxes
    return re.compile(r"(?<!\w)" + r"\s+".join([*words, last]) + r"(?!\w)", re.IGNORECASE)


def _haystack(item: DigestItem) -> str:
    return " \n ".join((item.insight.text, item.episode_title, item.insight.chapter or ""))
