"""Episodes to transcripts: real feeds on loopback, real MP3s, the real tiny.en model."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from digest import jobs
from digest.core.config import Config
from digest.jobs.transcription import Transcription
from digest.store import Store
from digest.transcripts.wer import word_error_rate
from tests.support.captions import JSON, SRT, VTT
from tests.support.feeds import item, serve_feed
from tests.support.httpserver import LoopbackServer, Route
from tests.support.processes import WorkerWatch, alive, whisper_workers
from tests.support.speech import WER_BOUND
from tests.support.waiting import wait_for

DATABASES = ("sqlite",)  # audio to transcripts, not the database: one backend is enough

# tiny.en on espeak-ng speech measured 0.10-0.17 WER on this machine class (2 cores,
# int8, beam 5), windowed or not. 0.30 leaves room for decoder differences between
# CPUs while still failing on any real fault: wrong sample rate, lost windows, or
# doubled segments all push WER far above 0.5.
Clips = dict[str, tuple[Path, str]]


def process_all(store: Store, config: Config, **kw: Any) -> dict[str, Any]:
    jobs.poll_feeds(store, config)
    with Transcription(store, config) as transcription:
        episodes = store.episodes.processable(max_attempts=3)
        return {e.title: transcription.transcribe(e, **kw) for e in episodes}


def test_publisher_transcripts_are_used_and_the_audio_is_never_requested(
    store: Store, http_server: LoopbackServer, make_config: Any
) -> None:
    for path, body, kind in (
        ("/t.vtt", VTT, "text/vtt"),
        ("/t.srt", SRT, "text/plain"),
        ("/t.json", JSON, "application/json"),
    ):
        http_server.routes[path] = Route(body, content_type=kind)
    serve_feed(
        http_server,
        store,
        [
            item(
                1,
                audio=http_server.url("/1.mp3"),
                transcript=(http_server.url("/t.vtt"), "text/vtt"),
            ),
            item(
                2,
                audio=http_server.url("/2.mp3"),
                transcript=(http_server.url("/t.srt"), "application/srt"),
            ),
            item(
                3,
                audio=http_server.url("/3.mp3"),
                transcript=(http_server.url("/t.json"), "application/json"),
            ),
        ],
    )
    config = make_config()
    results = process_all(store, config)
    assert {r.outcome for r in results.values()} == {"transcribed"}
    assert {r.source for r in results.values()} == {"publisher"}
    assert sorted(r.engine for r in results.values()) == [
        "publisher:json",
        "publisher:srt",
        "publisher:vtt",
    ]
    assert sum(http_server.count(f"/{n}.mp3") for n in (1, 2, 3)) == 0
    listed = {e.title: e for e in store.episodes.list()}
    assert listed["Episode 1"].transcript_source == "publisher"
    assert listed["Episode 1"].status == "transcribed"
    saved = json.loads(
        (config.state_dir / "transcripts" / f"{listed['Episode 1'].id}.json").read_text()
    )
    assert saved["segments"][0]["speaker"] == "Alice"


@pytest.mark.slow  # real Whisper
def test_whisper_transcribes_real_speech_and_a_rerun_does_nothing(
    store: Store, http_server: LoopbackServer, make_config: Any, speech: Clips
) -> None:
    mp3, text = speech["matrix"]
    http_server.routes["/1.mp3"] = Route(mp3.read_bytes(), content_type="audio/mpeg")
    http_server.routes["/dead.vtt"] = Route(status=404)
    serve_feed(
        http_server,
        store,
        [
            item(
                1,
                audio=http_server.url("/1.mp3"),
                transcript=(http_server.url("/dead.vtt"), "text/vtt"),
            )
        ],
    )
    config = make_config()

    [result] = process_all(store, config).values()
    assert (result.outcome, result.source, result.engine) == (
        "transcribed",
        "whisper",
        "faster-whisper",
    )
    episode = store.episodes.list()[0]
    stored = store.transcripts.get(episode.id)
    assert stored is not None
    assert word_error_rate(text, stored.transcript.text) < WER_BOUND
    assert stored.transcript.language == "en" and stored.audio_sha256 and stored.options_key
    starts = [s.start for s in stored.transcript.segments]
    assert starts == sorted(starts) and stored.transcript.duration == pytest.approx(19.5, abs=2.5)
    assert not list((config.state_dir / "media").iterdir()), "media is deleted after transcription"
    # Whisper's own confidence is kept per segment, through the worker and the store.
    first = stored.transcript.segments[0]
    assert first.avg_logprob is not None and -5 < first.avg_logprob <= 0
    assert first.no_speech_prob is not None and 0 <= first.no_speech_prob <= 1
    assert first.compression_ratio is not None and first.compression_ratio > 0
    copy = json.loads((config.state_dir / "transcripts" / f"{episode.id}.json").read_text())
    assert copy["segments"][0]["avg_logprob"] == first.avg_logprob

    with Transcription(store, config) as transcription:
        again = transcription.transcribe(store.episodes.get(episode.id))
    assert again.outcome == "cached"
    assert http_server.count("/1.mp3") == 1, "nothing is downloaded twice"


@pytest.mark.slow  # real Whisper
def test_long_audio_is_transcribed_in_windows_with_correct_offsets(
    store: Store, http_server: LoopbackServer, make_config: Any, speech: Clips
) -> None:
    mp3, text = speech["compression"]  # about 36 s: four windows of at most 10 s
    http_server.routes["/1.mp3"] = Route(mp3.read_bytes(), content_type="audio/mpeg")
    serve_feed(http_server, store, [item(1, audio=http_server.url("/1.mp3"))])
    config = make_config(transcription={"window_seconds": 10, "keep_audio": True})
    [result] = process_all(store, config).values()
    assert result.outcome == "transcribed", result.error
    stored = store.transcripts.get(store.episodes.list()[0].id)
    assert stored is not None
    segments = stored.transcript.segments
    assert segments[-1].end > 30, "later windows are shifted to episode time"
    assert all(a.start <= b.start for a, b in itertools.pairwise(segments))
    assert word_error_rate(text, stored.transcript.text) < WER_BOUND
    assert len(list((config.state_dir / "media").iterdir())) == 1, "keep_audio keeps the file"


@pytest.mark.slow  # real Whisper
def test_a_corrupt_enclosure_fails_only_its_episode(
    store: Store, http_server: LoopbackServer, make_config: Any, speech: Clips
) -> None:
    http_server.routes["/good.mp3"] = Route(
        speech["matrix"][0].read_bytes(), content_type="audio/mpeg"
    )
    http_server.routes["/bad.mp3"] = Route(
        random.Random(1).randbytes(40_000), content_type="audio/mpeg"
    )
    http_server.routes["/page.mp3"] = Route(b"<html>oops</html>", content_type="text/html")
    serve_feed(
        http_server,
        store,
        [
            item(1, audio=http_server.url("/good.mp3")),
            item(2, audio=http_server.url("/bad.mp3")),
            item(3, audio=http_server.url("/page.mp3")),
        ],
    )
    results = process_all(store, make_config())
    assert results["Episode 1"].outcome == "transcribed"
    assert results["Episode 2"].outcome == "failed" and "not decodable audio" in (
        results["Episode 2"].error or ""
    )
    assert results["Episode 3"].outcome == "failed" and "not audio" in (
        results["Episode 3"].error or ""
    )
    listed = {e.title: e for e in store.episodes.list()}
    assert listed["Episode 2"].status == "failed"
    assert "'Episode 2'" in (listed["Episode 2"].error or ""), "the error names the episode"
    assert listed["Episode 2"].attempts == 1


@pytest.mark.slow  # real Whisper
def test_identical_audio_is_transcribed_once_and_force_redoes_it(
    store: Store, http_server: LoopbackServer, make_config: Any, speech: Clips
) -> None:
    audio = speech["matrix"][0].read_bytes()
    http_server.routes["/a.mp3"] = Route(audio, content_type="audio/mpeg")
    http_server.routes["/b.mp3"] = Route(audio, content_type="audio/mpeg")
    serve_feed(
        http_server,
        store,
        [item(1, audio=http_server.url("/a.mp3")), item(2, audio=http_server.url("/b.mp3"))],
    )
    config = make_config()
    jobs.poll_feeds(store, config)
    calls: list[str] = []
    with Transcription(store, config) as transcription:
        original = transcription.worker.transcribe
        transcription.worker.transcribe = lambda path, *a, **k: (
            calls.append(path.name) or original(path, *a, **k)
        )  # type: ignore[method-assign]
        for episode in store.episodes.processable(max_attempts=3):
            assert transcription.transcribe(episode).outcome == "transcribed"
        assert len(calls) == 1, "the repost reuses the first transcript"
        first = store.episodes.list()[0]
        assert transcription.transcribe(first, force=True).outcome == "transcribed"
        assert len(calls) == 2


@pytest.mark.slow  # real Whisper
def test_a_transcription_timeout_stops_the_worker_and_fails_the_episode(
    store: Store, http_server: LoopbackServer, make_config: Any, speech: Clips
) -> None:
    http_server.routes["/1.mp3"] = Route(
        speech["compression"][0].read_bytes(), content_type="audio/mpeg"
    )
    serve_feed(http_server, store, [item(1, audio=http_server.url("/1.mp3"))])
    config = make_config(transcription={"timeout_seconds": 1})
    jobs.poll_feeds(store, config)
    [episode] = store.episodes.processable(max_attempts=3)
    with Transcription(store, config) as transcription:
        with WorkerWatch(os.getpid()) as watch:
            result = transcription.transcribe(episode)
        running = [pid for pid in watch.seen if alive(pid)]  # before the Transcription closes
    assert result.outcome == "failed"
    assert "stopped after the 1 s timeout" in (result.error or "")
    assert watch.seen, "a Whisper worker was started"
    assert running == [], "the timeout itself stopped the worker, not the clean-up after"


@pytest.mark.slow  # real Whisper
def test_a_whisper_worker_that_dies_fails_its_episode_and_the_next_goes_on(
    store: Store, http_server: LoopbackServer, make_config: Any, speech: Clips
) -> None:
    """A crash inside the decoder (here: SIGKILL, the worst kind) costs one episode."""
    for n, name in enumerate(("compression", "matrix"), start=1):
        http_server.routes[f"/{n}.mp3"] = Route(
            speech[name][0].read_bytes(), content_type="audio/mpeg"
        )
    serve_feed(http_server, store, [item(n, audio=http_server.url(f"/{n}.mp3")) for n in (1, 2)])
    config = make_config()
    jobs.poll_feeds(store, config)
    first, second = sorted(store.episodes.processable(max_attempts=3), key=lambda e: e.title)
    killed: list[int] = []

    before = set(whisper_workers(os.getpid()))  # a flow run in this process keeps its own

    def kill_the_first_worker() -> None:
        def new() -> list[int]:
            return [p for p in whisper_workers(os.getpid()) if p not in before]

        pid = wait_for(new, 120, "this test's Whisper worker", every=0.02)[0]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_the_first_worker)
    with Transcription(store, config) as transcription:
        killer.start()
        crashed = transcription.transcribe(first)
        killer.join()
        after = transcription.transcribe(second)
    assert killed, "the worker was killed"
    assert crashed.outcome == "failed"
    assert "the transcription process died" in (crashed.error or ""), crashed.error
    assert after.outcome == "transcribed", "a new worker took the next episode"
    assert store.episodes.get(first.id).status == "failed"
