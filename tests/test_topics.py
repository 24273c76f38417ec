"""Readers' topics: the syntax people type into search boxes, matched on whole words,
ranking matches first, keeping `-words` out, and "only my topics" sending nothing on
a day without them; readers without topics see no change."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from digest.core.errors import InvalidInput
from digest.core.models import DigestItem
from digest.core.topics import MAX_CHARS, parse_topics
from digest.jobs import send_digests
from digest.jobs.edition import top_items
from digest.store import Store
from tests.support.cli import command_line
from tests.support.seed import item_with, seed_insights

DATABASES = ("sqlite",)  # ranking and matching; the columns are migrated on both in test_store
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = NOW.date().isoformat()


# ---------------------------------------------------------------- the syntax
def test_phrases_words_and_exclusions_are_read_as_search_boxes_read_them() -> None:
    topics = parse_topics('  "Battery   Storage" grid -crypto -"proof of work" grid ')
    assert topics.include == ("battery storage", "grid"), "case-folded, spaces collapsed, once"
    assert topics.exclude == ("crypto", "proof of work")
    assert topics.text == '"battery storage" grid -crypto -"proof of work"'
    assert parse_topics(topics.text) == topics, "the stored spelling reads back the same"
    assert parse_topics('"open grid').include == ("open", "grid"), "an open quote: words"
    assert not parse_topics('  - -- "" '), "nothing to match is no topics"
    assert parse_topics("grid").key != parse_topics("grid", only=True).key != ""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x" * 10_000, f"at most {MAX_CHARS} characters"),
        (" ".join(f"w{n}" for n in range(21)), "at most 20 words or phrases"),
        ("grid\x00", "not text"),
    ],
)
def test_hostile_topics_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        parse_topics(text)


def test_only_my_topics_needs_a_topic_to_follow() -> None:
    with pytest.raises(InvalidInput, match="needs at least one topic"):
        parse_topics("-crypto", only=True)


@pytest.mark.parametrize(
    ("topic", "text", "hit"),
    [
        ("grid", "The grid operator said", True),
        ("grid", "Gridlock in the city", False),
        ("grid", "two GRIDS merged", True),
        ("battery", "Batteries earn money", True),
        ("battery storage", "battery\n storage is cheap", True),
        ("battery storage", "storage battery", False),
        ("c++", "written in C++ today", True),
    ],
)
def test_topics_match_whole_words_any_case_and_plurals(topic: str, text: str, hit: bool) -> None:
    assert parse_topics(f'"{topic}"').matches(item_with(text)) is hit


# ---------------------------------------------------------------- editions
def words(item: DigestItem) -> set[str]:
    return set(re.findall(r"[a-z]{5,}", f"{item.insight.text} {item.episode_title}".lower()))


@pytest.fixture
def seeded(store: Store, make_config: Any) -> Any:
    config = make_config(digest={"insights": 3})
    seed_insights(store, config)
    pool = store.insights.candidates(NOW - timedelta(days=3650), None)
    default = top_items(store, config, NOW)
    assert len(pool) > len(default) == 3, "some insights miss the default top three"
    return store, config, pool, default


def distinctive(items: list[DigestItem], among: list[DigestItem]) -> tuple[DigestItem, str]:
    """The first of `items` that says a word no other of `among` says, and the word."""
    for item in items:
        others = set().union(*(words(i) for i in among if i is not item))
        if own := sorted(words(item) - others):
            return item, own[0]
    raise AssertionError("the corpus has no insight with a word of its own")


def test_a_topic_brings_its_insight_first_and_readers_without_topics_see_no_change(
    seeded: Any,
) -> None:
    store, config, pool, default = seeded
    outsider, word = distinctive([i for i in pool if i not in default], pool)
    store.subscribers.add("plain@example.org", NOW)
    store.subscribers.add("topical@example.org", NOW, topics=parse_topics(word))
    report = send_digests(store, config, now=NOW)
    assert {r.email: r.outcome for r in report.results} == {
        "plain@example.org": "sent",
        "topical@example.org": "sent",
    }
    plain = store.subscribers.get("plain@example.org")
    topical = store.subscribers.get("topical@example.org")
    assert plain.selection == "all" and topical.selection.startswith("all|t")
    plain_ids = store.digests.get(DAY, plain.selection).insight_ids  # type: ignore[union-attr]
    topical_ids = store.digests.get(DAY, topical.selection).insight_ids  # type: ignore[union-attr]
    assert list(plain_ids) == [i.insight.id for i in default], "no change without topics"
    assert topical_ids[0] == outsider.insight.id, f"{word!r} ranks its insight first"
    assert len(topical_ids) == 3, "then the shows' top insights, as before"


def test_excluded_words_keep_insights_out(seeded: Any) -> None:
    store, config, _pool, default = seeded
    dropped, word = distinctive(default, default)
    store.subscribers.add("picky@example.org", NOW, topics=parse_topics(f"-{word}"))
    send_digests(store, config, now=NOW)
    picky = store.subscribers.get("picky@example.org")
    ids = store.digests.get(DAY, picky.selection).insight_ids  # type: ignore[union-attr]
    assert dropped.insight.id not in ids and len(ids) == 3


def test_only_my_topics_sends_matches_only_and_nothing_on_a_day_without_them(
    seeded: Any,
) -> None:
    store, config, pool, _default = seeded
    chosen, word = distinctive(pool, pool)
    store.subscribers.add("focused@example.org", NOW, topics=parse_topics(word, only=True))
    store.subscribers.add("absent@example.org", NOW, topics=parse_topics("zeppelins", only=True))
    report = send_digests(store, config, now=NOW)
    outcomes = {r.email: r.outcome for r in report.results}
    assert outcomes == {"focused@example.org": "sent", "absent@example.org": "nothing-to-send"}
    focused = store.subscribers.get("focused@example.org")
    frozen = store.digests.get(DAY, focused.selection)
    assert frozen is not None and list(frozen.insight_ids) == [chosen.insight.id]
    [mail] = (config.state_dir / "outbox" / DAY).glob("*.eml")
    assert mail.name.startswith("focused@"), "one message: the reader whose topic came up"


# ---------------------------------------------------------------- the command line
def test_topics_from_the_command_line(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = command_line(tmp_path, monkeypatch)
    digest("init")
    digest("subscribers", "add", "r@example.org", "--topics", 'grid "battery storage" -crypto')
    [row] = json.loads(digest("subscribers", "list", "--json"))
    assert row["topics"] == 'grid "battery storage" -crypto' and row["topics_only"] is False
    digest("subscribers", "set", "r@example.org", "--only-topics")
    [row] = json.loads(digest("subscribers", "list", "--json"))
    assert row["topics_only"] is True and row["topics"].startswith("grid")
    digest("subscribers", "set", "r@example.org", "--topics", "", "--any-topics")
    [row] = json.loads(digest("subscribers", "list", "--json"))
    assert (row["topics"], row["topics_only"]) == ("", False)
    refused = digest("subscribers", "set", "r@example.org", "--topics", "x" * 10_000, ok=False)
    assert "at most 500 characters" in refused and "Traceback" not in refused
    assert "needs at least one topic" in digest(
        "subscribers", "add", "s@example.org", "--only-topics", ok=False
    )
