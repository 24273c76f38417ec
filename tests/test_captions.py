"""Publisher transcripts: sniffing and parsing, pure."""

from __future__ import annotations

import pytest

from digest.core.errors import TranscriptError
from digest.core.text import normalise_words
from digest.transcripts.captions import parse_transcript, render_text, render_vtt, sniff_format
from digest.transcripts.wer import word_error_rate
from tests.support.captions import HTML, JSON, SRT, VTT, WORDS


@pytest.mark.parametrize(
    ("content", "declared", "expected"),
    [
        (VTT, "text/plain", "vtt"),  # sloppy MIME: the content decides
        (SRT, "application/octet-stream", "srt"),
        (JSON, "text/html", "json"),
        (HTML, "", "html"),
        (WORDS.encode(), "text/plain", "text"),
        (b"\xef\xbb\xbfWEBVTT\n\n", "", "vtt"),
    ],
)
def test_format_is_sniffed_from_content(content: bytes, declared: str, expected: str) -> None:
    assert sniff_format(content, declared) == expected


def test_vtt_keeps_voices_and_fractional_times() -> None:
    t = parse_transcript(VTT, declared_type="text/vtt")
    assert t.engine == "publisher:vtt" and t.source == "publisher" and t.timed
    first, second = t.segments
    assert (first.start, first.end, first.speaker) == (1.0, 4.5, "Alice")
    assert first.text == "Welcome back to Grid Talk & friends."
    assert (second.start, second.speaker) == (3723.25, "Bob")


def test_srt_and_podcasting20_json() -> None:
    srt = parse_transcript(SRT)
    assert [s.start for s in srt.segments] == [1.0, 60.0]
    assert srt.segments[0].text == "Welcome back to Grid Talk."
    js = parse_transcript(JSON)
    assert [(s.start, s.end, s.speaker) for s in js.segments] == [
        (0.5, 3.25, "Alice"),
        (3.25, 12.0, "Bob"),
    ]


def test_untimed_html_gets_times_estimated_from_the_duration() -> None:
    t = parse_transcript(HTML, duration=60.0)
    assert not t.timed and t.engine == "publisher:html"
    assert "<" not in t.text and WORDS in t.text
    assert t.segments[0].start == 0.0
    assert t.segments[-1].end == pytest.approx(60.0)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(t.segments, t.segments[1:], strict=False))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHi\n", "only 1 words"),
        (b'{"segments": "nope"}', "unreadable json"),
        (b"{not json", "unreadable json"),
        (b"", "only 0 words"),
    ],
)
def test_unusable_transcripts_are_errors(content: bytes, message: str) -> None:
    with pytest.raises(TranscriptError, match=message):
        parse_transcript(content, url="https://x.example/t")


def test_render_vtt_parses_back_to_the_same_segments() -> None:
    original = parse_transcript(JSON)
    again = parse_transcript(render_vtt(original).encode())
    assert [(s.start, s.end, s.text, s.speaker) for s in again.segments] == [
        (s.start, s.end, s.text, s.speaker) for s in original.segments
    ]
    assert render_text(original).splitlines()[1].startswith("[00:00:03] Grid batteries")


def test_word_error_rate() -> None:
    assert word_error_rate("The cat sat.", "the cat sat") == 0.0
    assert word_error_rate("the cat sat", "the bat sat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert word_error_rate("a b", "a x b y") == 1.0
    assert normalise_words("Kimi K2's 3% — top-k") == ["kimi", "k2's", "3", "percent", "top", "k"]
