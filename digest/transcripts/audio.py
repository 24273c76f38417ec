"""Audio decoding with PyAV (FFmpeg's libraries ship in its wheel: no system ffmpeg needed).

A three-hour episode is 691 MB as 16 kHz float32, so audio is never decoded whole:
`iter_windows` yields windows of a few minutes, each cut at the quietest moment
near its end so that no word is split between two windows.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from digest.core.errors import MediaError

SAMPLE_RATE = 16_000
PCM = npt.NDArray[np.float32]


def probe(path: Path, label: str = "") -> float:
    """Check the file decodes as audio; return its duration in seconds (0.0 if unknown)."""
    name = label or path.name
    if path.stat().st_size == 0:
        raise MediaError(f"{name}: the file is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{name}: no audio stream in the file")
            stream = container.streams.audio[0]
            for _frame in container.decode(stream):
                break
            else:
                raise MediaError(f"{name}: no decodable audio frames")
            if container.duration:
                return float(container.duration / av.time_base)
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            return 0.0
    except av.FFmpegError as exc:
        raise MediaError(f"{name}: not decodable audio ({exc})") from exc


MIN_TAIL_SECONDS = 10.0  # a shorter last window is joined to the one before it


def quietest_cut(pcm: PCM, target: int, search: int, frame: int = SAMPLE_RATE // 20) -> int:
    """Index near `target` (within `search` samples before it) where the audio is quietest."""
    start = max(0, target - search)
    region = pcm[start:target]
    if len(region) < frame:
        return target
    usable = len(region) // frame * frame
    energy = np.square(region[len(region) - usable :].reshape(-1, frame)).mean(axis=1)
    best = int(np.argmin(energy))
    return start + (len(region) - usable) + best * frame + frame // 2


def iter_windows(
    path: Path,
    window_seconds: float,
    *,
    search_seconds: float = 5.0,
    min_tail_seconds: float = MIN_TAIL_SECONDS,
) -> Iterator[tuple[float, PCM]]:
    """Yield (offset_seconds, mono 16 kHz float32) windows of at most `window_seconds`
    (the last one at most half a window longer).

    Each cut falls at the quietest moment shortly before the target, so a file a little
    longer than a whole number of windows would end in a window of a few seconds,
    which Whisper decodes without any context. Such a tail (under `min_tail_seconds`
    and under half a window) is joined to the window before it instead, which is
    therefore held back until the next cut or the end of the file."""
    window = int(window_seconds * SAMPLE_RATE)
    search = min(int(search_seconds * SAMPLE_RATE), window // 2)
    shortest = min(int(min_tail_seconds * SAMPLE_RATE), window // 2)  # the last window: < 1.5x
    pending: list[PCM] = []
    held = 0
    offset = 0
    ready: tuple[int, PCM] | None = None  # the last window cut, not yet yielded
    for chunk in _decode(path):
        pending.append(chunk)
        held += len(chunk)
        while held >= window:
            pcm = np.concatenate(pending)
            cut = quietest_cut(pcm, window, search)
            if ready is not None:
                yield ready[0] / SAMPLE_RATE, ready[1]
            ready = (offset, pcm[:cut])
            offset += cut
            pending, held = [pcm[cut:]], len(pcm) - cut
    tail = np.concatenate(pending) if held else np.zeros(0, dtype=np.float32)
    if ready is not None and len(tail) < shortest:
        yield ready[0] / SAMPLE_RATE, np.concatenate([ready[1], tail])
        return
    if ready is not None:
        yield ready[0] / SAMPLE_RATE, ready[1]
    if held:
        yield offset / SAMPLE_RATE, tail


def _decode(path: Path) -> Iterator[PCM]:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    decoded_any = False
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    continue  # one corrupt packet; FFmpeg resynchronises on the next
                for frame in frames:
                    for out in resampler.resample(frame):
                        decoded_any = True
                        yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    except (av.FFmpegError, IndexError) as exc:
        if not decoded_any:
            raise MediaError(f"{path.name}: not decodable audio ({exc})") from exc


def to_wav(pcm: PCM) -> bytes:
    """16-bit mono WAV: what a hosted transcription API accepts without re-encoding."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(pcm, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()
