"""Podcasting 2.0 chapters: the JSON file `podcast:chapters` points at.

{"version": "1.2.0", "chapters": [{"startTime": 0, "title": "Intro"}, ...]}
"""

from __future__ import annotations

import json

from digest.core.errors import FetchError
from digest.core.models import Chapter

MAX_CHAPTERS_BYTES = 1024 * 1024  # real files are a few kilobytes


def parse_chapters(data: bytes, url: str) -> tuple[Chapter, ...]:
    """Titled chapters in time order; entries without a title or a start are skipped."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FetchError(f"{url}: not a chapters JSON file ({exc})") from exc
    entries = document.get("chapters") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise FetchError(f'{url}: a chapters file needs a "chapters" list')
    found = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("toc") is False:
            continue  # toc: false marks a silent chapter (an image change, say)
        title = " ".join(str(entry.get("title") or "").split())[:200]
        start = entry.get("startTime")
        if title and isinstance(start, int | float) and start >= 0:
            found.append(Chapter(float(start), title))
    return tuple(sorted(found, key=lambda c: c.start))
