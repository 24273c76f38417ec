"""The day's editor pass applied to an edition's candidates (LLM backends).

The day's ranking (importance, then recency) shortlists the best candidates, capped per
episode and without twins; the editor (digest.insights.editor) orders them in one
request; `select_top` then takes the editor's order, still capping per episode and
dropping twins. No answer (a failed request, a cut-off or malformed answer) leaves the
day's ranking, and says so in the log. Answers are cached by what they depend on, so a
re-run asks nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digest.core.config import Config
from digest.core.errors import ConfigError
from digest.core.models import DigestItem
from digest.edition.select import rank_key, select_top
from digest.insights.backends import OFFLINE, configured
from digest.insights.context import Usage
from digest.insights.editor import Candidate, EditorAnswer, EditorError, EditorPass
from digest.store.editor_repo import EditorRepo

log = logging.getLogger("digest.editor")
Order = Callable[[DigestItem], tuple[Any, ...]]
# Where the pass's chat calls go for the cost report: (model, prompt version, calls).
Record = Callable[[str, str, list[dict[str, Any]]], None]


@dataclass(frozen=True)
class EditorChoice:
    """The editor's answer as the selection uses it: a sort key, and the header line."""

    order: Order
    header: str


def editor_enabled(config: Config) -> bool:
    return bool(config.extraction.editor_prompt) and configured(config) != OFFLINE


def editor_order(
    config: Config,
    date: str,
    pool: Sequence[DigestItem],
    count: int,
    same: Callable[[str, str], bool],
    *,
    cache: EditorRepo | None,
    now: datetime,
    prompt: str | None = None,
    client: Any = None,
    record: Record | None = None,
) -> EditorChoice | None:
    """A sort key that puts the editor's picks first, in its order, and its header line;
    None: keep the day's ranking (no editor configured, too few candidates, or no
    usable answer)."""
    if prompt is None and not editor_enabled(config):
        return None
    d = config.digest
    shortlist = select_top(
        pool,
        count=config.extraction.editor_candidates,
        max_per_episode=d.max_per_episode,
        similarity=d.similarity_threshold,
        same=same,
    )
    if len(shortlist) < 2:
        return None
    candidates = [
        Candidate(n, item.insight.text, item.show_title, item.episode_title)
        for n, item in enumerate(shortlist, start=1)
    ]
    try:
        editor = EditorPass.build(config, prompt, client)
        key = editor.cache_key(date, candidates, count)
        cached = cache.get(key) if cache else None
        if cached is not None:
            answer = EditorAnswer.from_json(cached)
        else:
            usage = Usage()
            try:
                answer = editor.ask(date, candidates, count, usage)
            finally:  # a refused answer cost its tokens too
                if record:
                    record(editor.model, editor.version, usage.calls)
            if cache:
                cache.save(key, editor.version, answer.to_json(), now)
    except (EditorError, ConfigError) as exc:
        log.warning("editor pass for %s: %s; the day's ranking stands", date, exc)
        return None
    position = {shortlist[p - 1].insight.id: n for n, p in enumerate(answer.picks)}
    log.info("editor pass for %s picked %s", date, list(answer.picks))

    def order(item: DigestItem) -> tuple[Any, ...]:
        if item.insight.id in position:
            return (0, position[item.insight.id])
        return (1, *rank_key(item))

    return EditorChoice(order, answer.header)
