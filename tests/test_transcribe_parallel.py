"""Parallel windows: one window per core, joined in order, progress that only grows.

The speed-up itself is a benchmark figure (docs/benchmarks.md); these tests pin down
what must hold whatever the speed: windows tile the file, segments come back in
episode order with the right offsets, an engine that is not thread-safe is never
called concurrently, and the real engine's words survive the split.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from digest.core.models import Segment
from digest.transcripts.audio import PCM, SAMPLE_RATE, iter_windows, probe
from digest.transcripts.engines import Progress, engine_options
from digest.transcripts.engines.faster_whisper import FasterWhisperEngine
from digest.transcripts.wer import word_error_rate
from digest.transcripts.windows import transcribe_file, window_seconds
from tests.support.speech import WER_BOUND

Clips = dict[str, tuple[Path, str]]


class RecordingEngine:
    """A stand-in engine that reports each window as one segment and records overlap."""

    name = "recording"

    def __init__(self, concurrent: bool) -> None:
        self.concurrent = concurrent
        self.active = 0
        self.most_at_once = 0
        self.changed = threading.Condition()

    def transcribe(self, pcm: PCM, progress: Progress) -> tuple[list[Segment], str]:
        with self.changed:
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
            self.changed.notify_all()
            # Thread-safe: hold this window until a second has started beside it, so the
            # overlap is seen, not hoped for. Not thread-safe: give a second window that
            # was wrongly started a moment to show itself.
            self.changed.wait_for(lambda: self.most_at_once >= 2, 30 if self.concurrent else 0.5)
        seconds = len(pcm) / SAMPLE_RATE
        progress(seconds / 2)
        progress(seconds)
        with self.changed:
            self.active -= 1
        return [Segment(0.0, seconds, f"window of {seconds:.3f} s")], "en"


def options(make_config: Any, **transcription: Any) -> Any:
    return engine_options(make_config(transcription=transcription))


def test_a_file_is_cut_no_more_often_than_the_window_forces(make_config: Any) -> None:
    o = options(make_config, parallel_windows=2, window_seconds=300)
    assert window_seconds(140.0, o) == 300  # fits one window: no cut, whatever the cores
    assert window_seconds(360.0, o) == 180  # one cut, as sequential; two even halves
    assert window_seconds(3 * 3600.0, o) == 300  # long files: the memory bound decides
    assert window_seconds(3 * 3600.0 + 1, o) == 292  # 37 even windows, none over 300 s
    assert window_seconds(0.0, o) == 300  # unknown duration: the configured window
    single = options(make_config, parallel_windows=1, window_seconds=300)
    assert window_seconds(360.0, single) == 180


def test_default_is_one_window_per_core_with_one_thread_each(make_config: Any) -> None:
    import os

    o = options(make_config, device="cpu")
    assert (o.parallel_windows, o.cpu_threads) == (os.cpu_count(), 1)
    assert options(make_config, batch_size=8).parallel_windows == 1  # a batch is one stream
    assert options(make_config, parallel_windows=3).parallel_windows == 3


@pytest.mark.parametrize("concurrent", [True, False])
def test_windows_are_joined_in_order_with_their_offsets(
    make_config: Any, speech: Clips, concurrent: bool
) -> None:
    path = speech["compression"][0]
    o = replace(options(make_config), parallel_windows=2, window_seconds=3)
    seen: list[float] = []
    engine = RecordingEngine(concurrent)
    transcript = transcribe_file(path, o, engine, seen.append)
    starts = [s.start for s in transcript.segments]
    assert len(starts) >= 3 and starts == sorted(starts)
    for before, after in zip(transcript.segments, transcript.segments[1:], strict=False):
        assert after.start == pytest.approx(before.end, abs=1e-3)  # windows tile the file
    assert transcript.segments[-1].end == pytest.approx(probe(path), abs=0.1)
    assert engine.most_at_once == (2 if concurrent else 1)
    assert seen == sorted(seen), "progress only grows, whichever window moved"
    assert seen[-1] == pytest.approx(probe(path), abs=0.1)


@pytest.mark.slow
def test_real_speech_split_across_cores_keeps_its_words(make_config: Any, speech: Clips) -> None:
    path, text = speech["matrix"]
    o = replace(options(make_config), parallel_windows=2)
    o = replace(o, window_seconds=max(2, int(probe(path) / 2) + 1))
    engine = FasterWhisperEngine(o)
    transcript = transcribe_file(path, o, engine)
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)
    assert word_error_rate(text, transcript.text) < WER_BOUND


@pytest.mark.slow
def test_the_same_file_gives_the_same_text_idle_or_busy(make_config: Any, speech: Clips) -> None:
    """int8 CTranslate2 with one thread per window has no thread-count-dependent sums:
    the transcript must not depend on what else the machine is doing."""
    import subprocess
    import sys

    path, _ = speech["matrix"]
    o = replace(options(make_config), parallel_windows=2)
    o = replace(o, window_seconds=max(2, int(probe(path) / 2) + 1))  # two windows at once
    engine = FasterWhisperEngine(o)

    def words() -> list[tuple[float, str]]:
        return [(s.start, s.text) for s in transcribe_file(path, o, engine).segments]

    idle = [words(), words()]
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)
    ]  # both cores busy
    try:
        busy = words()
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert idle[0] == idle[1] == busy


@pytest.mark.slow
def test_a_window_decoding_alone_encodes_on_every_core_to_the_same_text(
    make_config: Any, speech: Clips
) -> None:
    """One window in flight: the encoder runs on the engine's two threads, the decoder
    on one. The text must be exactly what one thread alone produces."""
    path, _ = speech["matrix"]
    both = FasterWhisperEngine(replace(options(make_config, device="cpu"), parallel_windows=2))
    one = FasterWhisperEngine(replace(options(make_config, device="cpu"), parallel_windows=1))
    assert one.encoder is None, "one core: nothing to share"
    assert both.encoder is not None
    shared = transcribe_file(path, both.options, both).segments
    assert both.encoder.wide_encodes > 0
    assert shared == transcribe_file(path, one.options, one).segments


def test_a_few_seconds_left_at_the_end_join_the_last_window(speech: Clips) -> None:
    """Cuts fall a little before their target, so a file just over two windows long
    would end in a tail of seconds decoded without context; it joins the last window."""
    path, _ = speech["matrix"]
    total = probe(path)
    windows = list(iter_windows(path, total / 2))
    assert len(windows) == 2, [round(len(p) / SAMPLE_RATE, 1) for _, p in windows]
    assert sum(len(p) for _, p in windows) / SAMPLE_RATE == pytest.approx(total, abs=0.1)
    assert windows[1][0] == pytest.approx(len(windows[0][1]) / SAMPLE_RATE)
    apart = list(iter_windows(path, total / 2, min_tail_seconds=0))
    assert len(apart) == 3 and len(apart[2][1]) / SAMPLE_RATE < 10, "without the join"


@pytest.mark.slow
def test_windows_that_need_the_fallback_come_out_the_same_every_run(
    make_config: Any, tmp_path: Path
) -> None:
    """This benchmark clip's windows fail the compression/log-probability checks, so
    Whisper decodes them again. With faster-whisper's sampling fallback three runs gave
    three transcripts; the fallback is now beam search with a rising repetition penalty."""
    from bench.audio import script_text
    from tests.support.speech import speak

    text = " ".join(script_text("mercury-2").split()[330:660])
    path = speak(text, tmp_path / "fallback.mp3")
    first = FasterWhisperEngine(options(make_config))
    runs = [transcribe_file(path, first.options, first).segments for _ in range(2)]
    assert first.fallback.fallbacks > 0, "the clip must exercise the fallback"
    fresh = FasterWhisperEngine(options(make_config))  # new model, new decoder threads
    runs.append(transcribe_file(path, fresh.options, fresh).segments)
    assert runs[0] == runs[1] == runs[2]
    assert word_error_rate(text, " ".join(s.text for s in runs[0])) < 0.5, "no runaway loop"
