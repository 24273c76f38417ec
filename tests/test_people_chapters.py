"""Who is speaking and where in the episode: `podcast:person` reaches the prompt so an
insight can name its guest, and `podcast:chapters` puts the chapter's title beside
the insight's timestamp in the email."""

from __future__ import annotations

import json
import re
from email import message_from_bytes
from email.policy import default
from email.utils import format_datetime
from typing import Any

import pytest

from digest import jobs
from digest.core.models import Segment, Transcript
from digest.insights.backends.extractive import extract_passages
from digest.store import Store
from tests.support.fake_openai import Call, FakeOpenAI, chat_reply, prompt_of, transcript_lines
from tests.support.httpserver import LoopbackServer, Route

GUEST, HOST = "Dr. Ada Byron", "Sam Host"
CHAPTERS = {
    "version": "1.2.0",
    "chapters": [
        {"startTime": 0, "title": "Welcome"},
        {"startTime": 40, "title": "Why batteries win the grid"},
        {"startTime": 90, "title": "Silent image change", "toc": False},
    ],
}
VTT = """WEBVTT

00:00:01.000 --> 00:00:20.000
Welcome to the show, today we talk about storage on the electricity grid with our guest.

00:00:45.000 --> 00:01:10.000
Batteries win the grid because they answer in milliseconds while a gas turbine needs many minutes to ramp up.

00:01:35.000 --> 00:01:50.000
That is all for today, thanks for listening to the show and see you next week.
"""


def feed(base: str, chapters_path: str) -> bytes:
    return f"""<rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0">
<channel><title>Grid Talk</title>
<podcast:person role="host">{HOST}</podcast:person>
<item><title>Storage wins</title><guid>st-1</guid><pubDate>{format_datetime(jobs.utcnow())}</pubDate>
<enclosure url="{base}/ep.mp3" type="audio/mpeg"/>
<podcast:transcript url="{base}/t.vtt" type="text/vtt"/>
<podcast:chapters url="{base}{chapters_path}" type="application/json+chapters"/>
<podcast:person role="guest" href="https://ada.example">{GUEST}</podcast:person>
<podcast:person role="host">{HOST}</podcast:person>
</item></channel></rss>""".encode()


def attributing_model(call: Call) -> Any:
    """A model that names the guest when (and only when) the prompt lists one."""
    guests = re.findall(r"People: .*?([^,(]+) \(guest\)", prompt_of(call))
    who = guests[0].strip() if guests else "The speaker"
    start, line = max(transcript_lines(call), key=lambda x: len(x[1].split()))
    quote = " ".join(line.split()[:18])
    answer = {"text": f"{who} argues that {quote[0].lower()}{quote[1:]}.", "quote": quote,
              "start": start, "importance": 8}  # fmt: skip
    return chat_reply(json.dumps({"insights": [answer]}), len(prompt_of(call)))


def world(
    http_server: LoopbackServer, make_config: Any, fake_openai: FakeOpenAI, chapters: Route
) -> Any:
    http_server.routes["/t.vtt"] = Route(VTT.encode(), content_type="text/vtt")
    http_server.routes["/chapters.json"] = chapters
    http_server.routes["/feed.xml"] = Route(feed(http_server.url(""), "/chapters.json"))
    fake_openai.handlers["/v1/chat/completions"] = attributing_model
    config = make_config(extraction={"backend": "openai", "base_url": fake_openai.base_url})
    store = Store(config.database_url)
    store.feeds.add(http_server.url("/feed.xml"), jobs.utcnow())
    store.subscribers.add("reader@example.org", jobs.utcnow())
    jobs.poll_feeds(store, config)
    extractor = jobs.Extractor(store, config)
    with jobs.Transcription(store, config) as transcription:
        [outcome] = [
            jobs.process_episode(
                e,
                jobs.LocalSteps(transcription, extractor),
                transcription.fail,
                transcription.leases,
            )
            for e in jobs.work_list(store, config, extractor)
        ]
    return config, store, outcome


def test_a_named_guest_is_credited_and_the_email_shows_the_chapter(
    http_server: LoopbackServer, make_config: Any, fake_openai: FakeOpenAI
) -> None:
    chapters = Route(json.dumps(CHAPTERS).encode(), content_type="application/json")
    config, store, outcome = world(http_server, make_config, fake_openai, chapters)
    assert outcome.outcome == "completed", outcome.error
    prompt = prompt_of(fake_openai.calls_to("/v1/chat/completions")[0])
    assert f"People: {GUEST} (guest), {HOST} (host)" in prompt, "the names reached the prompt"
    assert "[00:00:40] Why batteries win the grid" in prompt and "Silent image" not in prompt
    [insight] = outcome.extract.insights
    assert insight.text.startswith(f"{GUEST} argues that batteries win the grid")
    assert insight.chapter == "Why batteries win the grid" and insight.start_seconds == 45.0
    [episode] = store.episodes.list()
    assert [p.name for p in episode.people] == [GUEST, HOST]

    report = jobs.send_digests(store, config)
    [eml] = report.outbox
    message = message_from_bytes(eml.read_bytes(), policy=default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert 'at 00:00:45 in "Why batteries win the grid"' in " ".join(text.split())
    assert "at 00:00:45</a> in “Why batteries win the grid”" in html
    assert f": {GUEST} argues" in str(message["Subject"]), "the title does not end a sentence"

    again = jobs.Extractor(store, config).extract(episode, force=True)
    assert again.outcome == "extracted"
    assert http_server.count("/chapters.json") == 1, "chapters are fetched once, then cached"


@pytest.mark.parametrize(
    "chapters",
    [
        Route(status=500),
        # Valid chapters padded past the 1 MiB cap, without a length: read, they would
        # name a chapter; the running count stops them first.
        Route(json.dumps(CHAPTERS).encode() + b" " * (2 * 2**20), chunked=True),
    ],
    ids=["server-error", "over-1-MiB"],
)
def test_a_chapters_file_that_fails_never_fails_the_episode(
    http_server: LoopbackServer, make_config: Any, fake_openai: FakeOpenAI, chapters: Route
) -> None:
    _, store, outcome = world(http_server, make_config, fake_openai, chapters)
    assert outcome.outcome == "completed"
    [insight] = outcome.extract.insights
    assert insight.chapter is None and GUEST in insight.text
    assert store.episodes.list()[0].status == "extracted"


def test_the_offline_backend_never_glues_two_chapters_into_one_passage() -> None:
    sentences = [
        "Batteries answer the grid in milliseconds because their power electronics switch "
        "faster than any spinning machine can.",
        "Solar modules got ninety percent cheaper over a decade because production volume "
        "kept doubling year after year.",
    ]
    transcript = Transcript(
        "en", (Segment(0.0, 30.0, sentences[0]), Segment(80.0, 110.0, sentences[1])),
        "publisher", "publisher:text", "text",
    )  # fmt: skip
    [glued] = extract_passages(transcript, 5)  # the only passage: both sentences
    assert sentences[0] in glued.quote and sentences[1] in glued.quote
    assert extract_passages(transcript, 5, boundaries=[80.0]) == [], "a chapter starts between"
    assert extract_passages(transcript, 5, boundaries=[200.0]) != [], "a later chapter does not"
