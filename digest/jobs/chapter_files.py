"""An episode's chapters, fetched once through the guarded client and cached beside the
transcripts (`state/chapters/<episode id>.json`). Chapters make insights better but
are never needed: a chapters file that cannot be had is logged, and the episode is
extracted without it (and the fetch tried again next time)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

from digest.core.config import Config
from digest.core.errors import DigestError
from digest.core.models import Chapter, Episode
from digest.core.net import GuardedClient, raise_for_status, read_capped
from digest.core.statefiles import write_private
from digest.feeds.chapters import MAX_CHAPTERS_BYTES, parse_chapters

log = logging.getLogger("digest.chapters")
TIMEOUT_SECONDS = 30.0


def load_chapters(episode: Episode, config: Config) -> tuple[Chapter, ...]:
    """The episode's chapters: from the cache when its URL is unchanged, else fetched."""
    url = episode.chapters_url
    if not url:
        return ()
    path = config.state_dir / "chapters" / f"{episode.id}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached["url"] == url:
            return tuple(Chapter(**c) for c in cached["chapters"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not cached yet, or written by another version: fetch it
    try:
        chapters = _fetch(url, config)
    except DigestError as exc:
        log.warning("%s: no chapters this time (%s); extracting without them", episode.title, exc)
        return ()
    data = {"url": url, "chapters": [dataclasses.asdict(c) for c in chapters]}
    write_private(path, json.dumps(data, ensure_ascii=False).encode())
    return chapters


def _fetch(url: str, config: Config) -> tuple[Chapter, ...]:
    allow = config.feeds.allow_private_addresses
    client = GuardedClient(allow_private=allow, timeout=TIMEOUT_SECONDS)
    with client, client.stream(url) as response:
        raise_for_status(response, url)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        body = read_capped(response, max_bytes=MAX_CHAPTERS_BYTES, deadline=deadline, url=url)
    return parse_chapters(body, url)
