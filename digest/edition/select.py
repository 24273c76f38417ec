"""The daily top N: pure ranking with diversity. Same inputs, same digest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from digest.core.models import DigestItem
from digest.core.text import word_set_similarity


def rank_key(item: DigestItem) -> tuple[int, float, str, float, str]:
    """Importance first; then newer episodes, earlier moments, and the id as tie-breaks."""
    published = item.published_at or datetime.min.replace(tzinfo=UTC)
    return (
        -item.insight.importance,
        -published.timestamp(),
        item.insight.episode_id,
        item.insight.start_seconds or 0.0,
        item.insight.id,
    )


def select_top(
    candidates: Sequence[DigestItem],
    *,
    count: int,
    max_per_episode: int,
    similarity: float,
    first: Callable[[DigestItem], bool] | None = None,
    same: Callable[[str, str], bool] | None = None,
    order: Callable[[DigestItem], tuple[Any, ...]] | None = None,
) -> list[DigestItem]:
    """The best `count` insights, at most `max_per_episode` from one episode, no near-twins
    (`same` says which texts are twins: by default, word sets overlapping more than
    `similarity`); those `first` holds for (a reader's topics) rank before all others,
    then `order` decides (default: `rank_key`; the editor pass gives its own).

    When too few episodes qualify, fewer insights go out: a short digest beats filler.
    """
    chosen: list[DigestItem] = []
    per_episode: Counter[str] = Counter()
    preferred = first or (lambda item: False)
    twins = same or (lambda a, b: word_set_similarity(a, b) > similarity)
    ranked = order or rank_key
    for item in sorted(candidates, key=lambda item: (not preferred(item), *ranked(item))):
        if len(chosen) == count:
            break
        if per_episode[item.insight.episode_id] >= max_per_episode:
            continue
        if any(twins(item.insight.text, c.insight.text) for c in chosen):
            continue
        chosen.append(item)
        per_episode[item.insight.episode_id] += 1
    return chosen
