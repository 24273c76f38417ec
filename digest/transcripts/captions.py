"""Publisher transcripts (`podcast:transcript`): sniff the format, parse it into segments.

MIME types in the wild are sloppy (VTT served as text/plain, JSON as
application/octet-stream), so the declared type is only a hint and the content
decides. Pure: bytes in, Transcript out.
"""

from __future__ import annotations

import html
import io
import json
import re
from typing import Any

import srt
import webvtt

from digest.core.errors import TranscriptError
from digest.core.models import Segment, Transcript

FORMATS = ("vtt", "srt", "json", "html", "text")
MIN_WORDS = 20  # fewer words than this is a stub or an error page, not a transcript
SRT_CUE = re.compile(r"^\s*\d+\s*\r?\n\s*\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}\s*-->", re.MULTILINE)
BLOCK_TAG = re.compile(r"</?(p|div|br|li|h\d|cite|tr|td|section|time)\b[^>]*>", re.IGNORECASE)
TAG = re.compile(r"<[^>]+>")  # inline markup (<b>, <i>, <v Bob>) disappears without a space


def sniff_format(content: bytes, declared_type: str = "", url: str = "") -> str:
    """Decide the format from the content first, then the declared type and URL."""
    head = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:2048]
    if head.startswith(b"WEBVTT"):
        return "vtt"
    if head[:1] in (b"{", b"["):
        return "json"
    if SRT_CUE.match(head.decode("utf-8", "replace")):
        return "srt"
    lowered = head.lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or re.search(
        rb"<(p|div|body|span|cite)\b", lowered
    ):
        return "html"
    hint = f"{declared_type} {url}".lower()
    for fmt, markers in (("vtt", ("vtt",)), ("srt", ("srt", "subrip")), ("html", ("html",))):
        if any(m in hint for m in markers):
            return fmt
    return "text"


def parse_timestamp(value: str) -> float:
    """`01:02:03.500`, `02:03.5` or `01:02:03,500` to seconds."""
    seconds = 0.0
    for part in value.strip().replace(",", ".").split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def _clean(text: str) -> str:
    text = TAG.sub("", BLOCK_TAG.sub(" ", text))
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def _vtt(text: str) -> list[Segment]:
    captions = webvtt.from_buffer(io.StringIO(text))
    return [
        Segment(parse_timestamp(c.start), parse_timestamp(c.end), _clean(c.text), c.voice or "")
        for c in captions.captions
    ]


def _srt(text: str) -> list[Segment]:
    return [
        Segment(s.start.total_seconds(), s.end.total_seconds(), _clean(s.content))
        for s in srt.parse(text)
    ]


def _json(text: str) -> list[Segment]:
    data: Any = json.loads(text)
    rows = data.get("segments") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ValueError('no "segments" list')
    segments = []
    for row in rows:
        start = float(row.get("startTime", row.get("start", 0.0)))
        end = float(row.get("endTime", row.get("end", start)))
        segments.append(
            Segment(
                start,
                end,
                _clean(str(row.get("body", row.get("text", "")))),
                str(row.get("speaker", "")),
            )
        )
    return segments


def _untimed(text: str, duration: float | None) -> list[Segment]:
    """Paragraphs with times estimated from word positions (or zero if duration unknown)."""
    blocks = re.split(r"\n\s*\n|</p>|<br\s*/?>", text, flags=re.I)
    paragraphs = [p for p in (_clean(p) for b in blocks for p in _headings_apart(b)) if p]
    total = sum(len(p.split()) for p in paragraphs) or 1
    per_word = (duration or 0.0) / total
    segments, words = [], 0
    for p in paragraphs:
        n = len(p.split())
        segments.append(Segment(words * per_word, (words + n) * per_word, p))
        words += n
    return segments


def _headings_apart(block: str) -> list[str]:
    """Headings in a paragraph ("2. For the physicist", a rule of ────) become paragraphs
    of their own, so no heading runs into the speech after it. A heading is a short line
    without final punctuation that starts the block or follows a finished sentence, and
    has more text after it (a hard-wrapped sentence's lines follow unfinished ones)."""
    lines = [line.strip() for line in block.split("\n") if line.strip()]
    parts: list[str] = []
    current: list[str] = []
    for n, line in enumerate(lines):
        after_sentence = not current or re.search(r"[.!?][\"”’)]*$", current[-1])
        if after_sentence and n + 1 < len(lines) and _heading(line):
            parts += [" ".join(current), line] if current else [line]
            current = []
        else:
            current.append(line)
    return [*parts, "\n".join(current)]


def _heading(line: str) -> bool:
    words = line.split()
    return 0 < len(words) <= 12 and not re.search(r"[.!?,;:\"”’]$", line)


def parse_transcript(
    content: bytes, *, declared_type: str = "", url: str = "", duration: float | None = None
) -> Transcript:
    """Parse a publisher transcript; raise TranscriptError if it is unusable."""
    fmt = sniff_format(content, declared_type, url)
    text = content.decode("utf-8-sig", errors="replace")
    try:
        if fmt == "vtt":
            segments = _vtt(text)
        elif fmt == "srt":
            segments = _srt(text)
        elif fmt == "json":
            segments = _json(text)
        else:
            segments = _untimed(text, duration)
    except (
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        srt.SRTParseError,
        webvtt.errors.MalformedFileError,
    ) as exc:
        raise TranscriptError(f"{url or 'transcript'}: unreadable {fmt} transcript: {exc}") from exc
    segments = [s for s in segments if s.text]
    words = sum(len(s.text.split()) for s in segments)
    if words < MIN_WORDS:
        raise TranscriptError(
            f"{url or 'transcript'}: only {words} words of {fmt}; not a usable transcript"
        )
    return Transcript(
        language="",
        segments=tuple(segments),
        source="publisher",
        engine=f"publisher:{fmt}",
        model=declared_type or fmt,
        timed=fmt in ("vtt", "srt", "json"),
    )


def clock(seconds: float, *, millis: bool = False) -> str:
    """`01:02:03` (or `01:02:03.500` for WebVTT)."""
    whole = int(seconds)
    text = f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{text}.{round((seconds - whole) * 1000) % 1000:03d}" if millis else text


def render_text(transcript: Transcript) -> str:
    """One line per segment with its start time: readable, and greppable by time."""
    return "".join(f"[{clock(s.start)}] {s.text}\n" for s in transcript.segments)


def render_vtt(transcript: Transcript) -> str:
    cues = ["WEBVTT\n"]
    for s in transcript.segments:
        voice = f"<v {s.speaker}>" if s.speaker else ""
        cues.append(
            f"{clock(s.start, millis=True)} --> {clock(s.end, millis=True)}\n{voice}{s.text}\n"
        )
    return "\n".join(cues)
