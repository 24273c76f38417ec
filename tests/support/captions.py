"""Publisher transcripts in the formats feeds announce (VTT, SRT, Podcasting 2.0 JSON,
HTML), one spoken claim in each, for the caption and processing tests."""

from __future__ import annotations

import json

WORDS = (
    "Grid batteries earn most of their money in the few hours a year when prices spike. "
    "That is why operators size them for those hours rather than for daily cycling."
)

VTT = f"""WEBVTT

00:00:01.000 --> 00:00:04.500
<v Alice>Welcome back to <b>Grid Talk</b> &amp; friends.

01:02:03.250 --> 01:02:09.000
<v Bob>{WORDS}
""".encode()

SRT = f"""1
00:00:01,000 --> 00:00:04,500
Welcome back to <i>Grid Talk</i>.

2
00:01:00,000 --> 00:01:05,000
{WORDS}
""".encode()

JSON = json.dumps(
    {
        "version": "1.0.0",
        "segments": [
            {"speaker": "Alice", "startTime": 0.5, "endTime": 3.25, "body": "Welcome back."},
            {"speaker": "Bob", "startTime": 3.25, "endTime": 12.0, "body": WORDS},
        ],
    }
).encode()

HTML = f"""<html><body><cite>Alice:</cite><p>Welcome back to Grid Talk.</p>
<cite>Bob:</cite><p>{WORDS}</p></body></html>""".encode()
