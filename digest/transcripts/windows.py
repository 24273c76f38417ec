"""A file transcribed window by window, with whichever engine the options name.

Audio reaches the engine in windows (see `digest.transcripts.audio`), so memory stays
bounded however long the episode; an engine that allows it decodes several windows
at once, one per core. Segments are shifted to episode time and joined in order.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from digest.core.models import Segment, Transcript
from digest.transcripts.audio import PCM, iter_windows, probe
from digest.transcripts.engines import Engine, EngineOptions, Progress


def window_seconds(duration: float, options: EngineOptions) -> float:
    """The window length: never more cuts than `window_seconds` forces, and the file
    split evenly between them, so windows decoded in parallel finish together.

    Every cut costs the decoder its context: cutting the benchmark's 140 s clip in two,
    one half per core, cost 4 WER points against one window (docs/benchmarks.md).
    Parallelism therefore comes from files longer than one window, where the cuts
    are needed anyway to bound memory."""
    count = math.ceil(duration / options.window_seconds) if duration > 0 else 1
    return math.ceil(duration / count) if count > 1 else options.window_seconds


def transcribe_file(
    path: Path, options: EngineOptions, engine: Engine, progress: Progress | None = None
) -> Transcript:
    """Transcribe window by window, shifting each window's segments to episode time.

    With `parallel_windows` > 1 and an engine that allows it, that many windows are
    decoded at once; at most that many (plus one being decoded from the file) are held
    in memory, and segments are joined in order however the windows finish.
    """
    slots = options.parallel_windows if engine.concurrent else 1
    windows = iter_windows(path, window_seconds(probe(path), options))
    done_seconds: dict[float, float] = {}
    lock = threading.Lock()

    def run(offset: float, pcm: PCM) -> tuple[float, list[Segment], str]:
        def report(seconds: float) -> None:
            with lock:  # progress is the total transcribed, whichever window moved
                done_seconds[offset] = seconds
                total = sum(done_seconds.values())
            if progress:
                progress(total)

        pieces, detected = engine.transcribe(pcm, report)
        return offset, pieces, detected

    segments: list[Segment] = []
    language = ""
    with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="whisper") as pool:
        pending: deque[Future[tuple[float, list[Segment], str]]] = deque()
        for offset, pcm in windows:
            pending.append(pool.submit(run, offset, pcm))
            if len(pending) == slots:
                detected = _collect(pending.popleft(), segments)
                language = language or detected  # the first window's language names the file
        while pending:
            detected = _collect(pending.popleft(), segments)
            language = language or detected
    return Transcript(
        language=language or options.language,
        segments=tuple(segments),
        source="whisper",
        engine=engine.name,
        model=options.model,
    )


def _collect(future: Future[tuple[float, list[Segment], str]], segments: list[Segment]) -> str:
    offset, pieces, detected = future.result()
    segments.extend(
        replace(s, start=offset + s.start, end=offset + s.end) for s in pieces if s.text
    )
    return detected
