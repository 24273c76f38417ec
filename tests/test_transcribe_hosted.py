"""The hosted `openai` transcription backend, against an OpenAI-compatible loopback server."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from digest.core.errors import ConfigError, TranscriptError
from digest.transcripts.engines import engine_options
from digest.transcripts.engines.hosted import HostedEngine
from digest.transcripts.windows import transcribe_file
from tests.support.fake_openai import FakeOpenAI, Reply, wav_seconds

Clips = dict[str, tuple[Path, str]]


def hosted(make_config: Any, server: FakeOpenAI, **settings: Any) -> Any:
    config = make_config(
        transcription={
            "backend": "openai",
            "model": "whisper-1",
            "base_url": server.base_url,
            **settings,
        }
    )
    return engine_options(config)


def test_windows_are_uploaded_as_wav_and_segments_shifted_to_episode_time(
    make_config: Any, fake_openai: FakeOpenAI, speech: Clips
) -> None:
    options = hosted(make_config, fake_openai, window_seconds=10)
    transcript = transcribe_file(speech["compression"][0], options, HostedEngine(options))
    calls = fake_openai.calls_to("/v1/audio/transcriptions")
    assert len(calls) >= 4
    assert all(
        c.form["model"] == "whisper-1" and c.form["response_format"] == "verbose_json"
        for c in calls
    )
    uploaded = [wav_seconds(c.form["file"]) for c in calls]
    assert all(s <= 10.0 for s in uploaded)
    # Each fake segment says where it sits in its window; shifted starts must add up.
    offsets = [0.0]
    for seconds in uploaded[:-1]:
        offsets.append(offsets[-1] + seconds)
    window_starts = [s.start for s in transcript.segments if s.text.startswith("words at 0 ")]
    assert window_starts == pytest.approx(offsets, abs=1e-3)
    assert transcript.engine == "openai" and transcript.model == "whisper-1"
    assert transcript.duration == pytest.approx(sum(uploaded), abs=0.01)


def test_uploads_stay_under_the_25_mib_limit(
    make_config: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    """A 20-minute episode, with an hour asked for per window: each upload still fits the
    API's 25 MiB, so the file goes up in pieces."""
    long = tmp_path / "long.wav"
    rate = 8000  # a tone, quick to write and to decode; the engine resamples to 16 kHz
    tone = (8000 * np.sin(np.arange(1200 * rate) * (2 * np.pi * 300 / rate))).astype("<i2")
    with wave.open(str(long), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone.tobytes())
    options = hosted(make_config, fake_openai, window_seconds=3600)
    transcript = transcribe_file(long, options, HostedEngine(options))
    uploads = [c.form["file"] for c in fake_openai.calls_to("/v1/audio/transcriptions")]
    assert len(uploads) == 2, "20 minutes in two windows"
    assert all(len(u) < 25 * 1024 * 1024 for u in uploads), [len(u) for u in uploads]
    assert sum(wav_seconds(u) for u in uploads) == pytest.approx(1200, abs=1)
    assert transcript.duration == pytest.approx(1200, abs=1)


def test_rate_limits_and_server_errors_are_retried(
    make_config: Any, fake_openai: FakeOpenAI, speech: Clips
) -> None:
    fake_openai.queue += [
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}),
        Reply(500, {"error": {"message": "boom"}}),
    ]
    options = hosted(make_config, fake_openai)
    transcript = transcribe_file(speech["matrix"][0], options, HostedEngine(options))
    assert transcript.segments
    assert len(fake_openai.calls_to("/v1/audio/transcriptions")) == 3


def test_a_persistent_failure_is_a_transcript_error(
    make_config: Any, fake_openai: FakeOpenAI, speech: Clips
) -> None:
    fake_openai.queue += [Reply(400, {"error": {"message": "unsupported file"}})]
    options = hosted(make_config, fake_openai)
    with pytest.raises(TranscriptError, match="unsupported file"):
        transcribe_file(speech["matrix"][0], options, HostedEngine(options))


def test_gpt4o_transcribe_answers_without_segments(
    make_config: Any, fake_openai: FakeOpenAI, speech: Clips
) -> None:
    options = hosted(make_config, fake_openai, model="gpt-4o-transcribe")
    transcript = transcribe_file(speech["matrix"][0], options, HostedEngine(options))
    assert fake_openai.calls_to("/v1/audio/transcriptions")[0].form["response_format"] == "json"
    assert len(transcript.segments) == 1 and transcript.segments[0].start == 0.0


def test_local_model_names_and_missing_keys_are_config_errors(make_config: Any) -> None:
    with pytest.raises(ConfigError, match="whisper-1"):
        engine_options(make_config(transcription={"backend": "openai"}))
    options = engine_options(make_config(transcription={"backend": "openai", "model": "whisper-1"}))
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        HostedEngine(options)
