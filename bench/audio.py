"""Benchmark audio: the corpus scripts spoken by espeak-ng and by piper's natural voice,
cached under state/bench/audio.

Made here rather than committed (no large binaries in git); the same text is the
reference the word error rate is measured against.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

from bench.common import ROOT
from digest.transcripts.audio import probe

CORPUS = ROOT / "tests" / "fixtures" / "corpus"
SCRIPTS = ("kimi-k2", "mercury-2", "qwen3-coder-flash", "qwen3.5-122b-a10b")
CACHE = ROOT / "state" / "bench" / "audio"


def script_text(name: str, max_words: int | None = None) -> str:
    """The words a listener hears: box-drawing rules and list markers are not spoken."""
    lines = []
    for line in (CORPUS / f"{name}.txt").read_text().splitlines():
        line = re.sub(r"^\s*(\d+\.|[-*•])\s+", "", line).strip()
        if re.search(r"\w", line):
            lines.append(line)
    words = " ".join(lines).split()
    return " ".join(words[:max_words] if max_words else words)


VOICES = ("espeak-ng", "piper")  # robotic, natural (en_US joe medium)


def spoken(text: str, *, noisy: bool = False, voice: str = "espeak-ng") -> Path:
    """An MP3 of `text` as a podcast host serves it (44.1 kHz stereo 64 kbit/s), read by
    espeak-ng or by piper's natural voice, cached."""
    from tests.support.speech import speak, speak_naturally

    CACHE.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:12] + ("-piper" if voice == "piper" else "")
    clean = CACHE / f"{key}.mp3"
    if not clean.exists():
        make = speak_naturally if voice == "piper" else speak
        make(text, CACHE / f"{key}.tmp.mp3").rename(clean)
    if not noisy:
        return clean
    out = CACHE / f"{key}-noisy.mp3"
    if not out.exists():
        # Pink noise about 15 dB under the voice: a laptop mic in a quiet room.
        _ffmpeg(
            "-i", str(clean),
            "-filter_complex",
            "anoisesrc=color=pink:amplitude=0.05:seed=7[n];[0:a][n]amix=inputs=2:duration=first",
            "-ac", "2", "-ar", "44100", "-b:a", "64k", str(out),
        )  # fmt: skip
    return out


def looped(source: Path, hours: float) -> Path:
    """A long episode made by repeating speech (stream copy: seconds to make)."""
    out = CACHE / f"{source.stem}-{hours:g}h.mp3"
    if not out.exists():
        seconds = probe(source)
        loops = int(hours * 3600 / seconds) + 1
        tmp = out.with_suffix(".tmp.mp3")
        _ffmpeg(
            "-stream_loop", str(loops - 1), "-i", str(source),
            "-t", str(hours * 3600), "-c", "copy", str(tmp),
        )  # fmt: skip
        tmp.rename(out)
    return out


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *args], check=True, capture_output=True)
