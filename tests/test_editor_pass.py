"""The day's editor pass against the loopback OpenAI-compatible server: its order wins,
the code still caps per episode and drops twins, a failed or cut-off answer leaves the
day's ranking (and says so), answers are cached, and the request stays in its budget."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from typing import Any

import pytest

from digest.core.models import DigestItem
from digest.jobs import utcnow
from digest.jobs.edition import top_items
from digest.store import Store
from tests.support.fake_openai import (
    Call,
    FakeOpenAI,
    Reply,
    chat_reply,
    editor_request,
    prompt_of,
)
from tests.support.seed import SCRIPTS, seed_insights

DATABASES = ("sqlite",)  # the pass, not the database


@pytest.fixture
def day(store: Store, make_config: Any, fake_openai: FakeOpenAI) -> Any:
    """Insights of two shows (extracted offline), and the config of an LLM deployment."""
    offline = make_config()
    seed_insights(store, offline, show="Alpha Hour", scripts=SCRIPTS[:2])
    seed_insights(store, offline, show="Beta Talk", scripts=SCRIPTS[2:])
    config = make_config(
        extraction={"backend": "openai", "base_url": fake_openai.base_url, "max_retries": 0}
    )
    return config


def shown(call: Call) -> dict[int, str]:
    """The candidates the request listed, by number."""
    user = call.json["messages"][-1]["content"]  # type: ignore[index]
    return {int(n): text for n, text in re.findall(r"^\[(\d+)\] \([^)]*\) (.+)$", user, re.M)}


def editor_calls(fake: FakeOpenAI) -> list[Call]:
    return [c for c in fake.calls_to("/v1/chat/completions") if editor_request(c)]


def script(fake: FakeOpenAI, answer: Any) -> None:
    fake.handlers["/v1/chat/completions"] = answer


def ranking_without_editor(store: Store, config: Any) -> list[DigestItem]:
    from dataclasses import replace

    off = replace(config, extraction=replace(config.extraction, editor_prompt=""))
    return top_items(store, off, utcnow())


def test_the_editors_order_wins_within_the_codes_rules(
    store: Store, day: Any, fake_openai: FakeOpenAI
) -> None:
    default = ranking_without_editor(store, day)
    assert len(default) == 5 and not editor_calls(fake_openai), "off: no request"
    candidates = {
        c.insight.text: c for c in store.insights.candidates(utcnow() - timedelta(days=2), None)
    }
    answers: list[list[int]] = []

    def greedy_then_reversed(call: Call) -> Reply:
        """Three from one episode first (one too many), a number that names nothing, then
        the rest from the bottom of the day's ranking up."""
        listed = shown(call)
        by_episode: dict[str, list[int]] = {}
        for n, text in listed.items():
            by_episode.setdefault(candidates[text].insight.episode_id, []).append(n)
        greedy = max(by_episode.values(), key=len)[:3]
        picks = [*greedy, 999, *(n for n in sorted(listed, reverse=True) if n not in greedy)]
        answers.append(picks)
        answer = {"header": "Five ideas.", "picks": picks}
        return chat_reply(json.dumps(answer), len(prompt_of(call)))

    script(fake_openai, greedy_then_reversed)
    edited = top_items(store, day, utcnow())
    [call] = editor_calls(fake_openai)
    assert "<transcript>" not in prompt_of(call), "candidates only, no transcripts"
    listed = shown(call)
    expected: list[str] = []
    for n in answers[0]:
        if n in listed and len(expected) < 5:
            episode = candidates[listed[n]].insight.episode_id
            if sum(candidates[t].insight.episode_id == episode for t in expected) < 2:
                expected.append(listed[n])
    assert [i.insight.text for i in edited] == expected, "the editor's order, capped"
    assert len(expected) == 5 and expected != [i.insight.text for i in default]
    assert set(expected) <= set(listed.values()), "only grounded candidates can be picked"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (lambda call: chat_reply("I think the third one is best.", 100), "not JSON"),
        (lambda call: chat_reply(json.dumps({"header": "x", "picks": [0, 99]}), 100),
         "no candidate that exists"),
        (lambda call: truncated(), "cut off at 400 tokens"),
        (lambda call: Reply(status=500, body={"error": {"message": "boom"}}), "request failed"),
    ],
    ids=["prose", "out-of-range", "truncated", "server-error"],
)  # fmt: skip
def test_no_usable_answer_leaves_the_days_ranking_and_says_why(
    store: Store,
    day: Any,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    reply: Any,
    reason: str,
) -> None:
    default = ranking_without_editor(store, day)
    script(fake_openai, reply)
    with caplog.at_level(logging.WARNING, logger="digest.editor"):
        edited = top_items(store, day, utcnow())
    assert [i.insight.id for i in edited] == [i.insight.id for i in default]
    assert len(editor_calls(fake_openai)) == 1
    [record] = [r for r in caplog.records if r.name == "digest.editor"]
    assert reason in record.getMessage() and "the day's ranking stands" in record.getMessage()


def truncated() -> Reply:
    reply = chat_reply('{"header": "Five', 100)
    assert isinstance(reply.body, dict)
    reply.body["choices"][0]["finish_reason"] = "length"
    return reply


def test_answers_are_cached_and_the_request_keeps_to_its_budget(
    store: Store, day: Any, fake_openai: FakeOpenAI, make_config: Any
) -> None:
    first = top_items(store, day, utcnow())
    again = top_items(store, day, utcnow())
    assert first == again and len(editor_calls(fake_openai)) == 1, "a re-run asks nothing"

    small = make_config(
        extraction={
            "backend": "openai",
            "base_url": fake_openai.base_url,
            "editor_candidates": 3,
            "editor_answer_tokens": 120,
        }
    )
    top_items(store, small, utcnow())
    call = editor_calls(fake_openai)[-1]
    assert len(shown(call)) == 3, "only the day's best few are shown"
    assert call.json is not None and call.json["max_tokens"] == 120
    assert (
        call.json["response_format"]["json_schema"]["schema"]["properties"]["picks"]["maxItems"]
        == small.digest.insights
    )


def test_the_offline_backend_has_no_editor_pass(
    store: Store, make_config: Any, fake_openai: FakeOpenAI
) -> None:
    seed_insights(store, make_config())
    assert len(top_items(store, make_config(), utcnow())) == 5
    assert fake_openai.calls_to("/v1/chat/completions") == []


def test_the_editors_header_line_opens_the_frozen_edition_unless_it_is_not_plain(
    store: Store, day: Any, fake_openai: FakeOpenAI
) -> None:
    from email import message_from_bytes

    from digest.insights.editor import parse_editor_answer
    from digest.jobs import send_digests

    def first_line(date: str) -> str:
        [mail] = (day.state_dir / "outbox").glob(f"{date}/reader@example.org.eml")
        part = message_from_bytes(mail.read_bytes()).get_payload(0)
        return str(part.get_payload(decode=True).decode()).strip().splitlines()[0]  # type: ignore[union-attr]

    store.subscribers.add("reader@example.org", utcnow() - timedelta(days=1))
    today = utcnow()
    send_digests(store, day, now=today)
    frozen = store.digests.get(today.date().isoformat())
    assert frozen is not None and frozen.header == "Five ideas worth your morning."
    assert first_line(today.date().isoformat()) == "Five ideas worth your morning."

    def linking(call: Call) -> Reply:
        answer = {"header": "Read more at https://spam.example today!", "picks": [1, 2]}
        return chat_reply(json.dumps(answer), 100)

    script(fake_openai, linking)
    tomorrow = today + timedelta(days=1)
    send_digests(store, day, now=tomorrow)
    later = store.digests.get(tomorrow.date().isoformat())
    assert later is not None and later.header == "", "a link is not a header line"
    assert first_line(tomorrow.date().isoformat()).startswith("We scan new podcasts")

    def header_of(text: str) -> str:
        return parse_editor_answer(json.dumps({"header": text, "picks": [1]}), 3, 2).header

    assert header_of("<b>Bold</b> claims") == "" and header_of("Mail me@example.org") == ""
    assert header_of("Plain  and\nshort.") == "Plain and short."
    assert header_of("x" * 161) == ""


def test_the_editors_tokens_are_in_the_cost_report_beside_extractions(
    store: Store, day: Any, fake_openai: FakeOpenAI
) -> None:
    from dataclasses import replace

    from digest.jobs import status_report

    def usage() -> dict[str, dict[str, Any]]:
        return {u["stage"]: u for u in status_report(store, day)["llm_usage"]}

    assert "editor" not in usage(), "the offline insights cost nothing"
    top_items(store, day, utcnow())
    top_items(store, day, utcnow())  # cached: no second call, no second row
    [call] = editor_calls(fake_openai)
    editor = usage()["editor"]
    assert editor["calls"] == 1 and editor["model"] == day.extraction.model
    assert editor["prompt_tokens"] == len(prompt_of(call)) // 4, "what the server reported"

    script(fake_openai, lambda call: truncated())  # a refused answer still cost its tokens
    other = replace(day, digest=replace(day.digest, insights=4))
    top_items(store, other, utcnow())
    assert usage()["editor"]["calls"] == 2
    assert usage()["editor"]["completion_tokens"] > editor["completion_tokens"]
