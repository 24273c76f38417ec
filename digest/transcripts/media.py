"""Enclosure downloads: streamed to `<name>.part`, resumed with Range after a drop, renamed
into place only once complete, and checked to be audio before anyone transcribes them.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from digest.core.errors import BlockedURL, DiskFull, FetchError, MediaError, TooLarge
from digest.core.net import GuardedClient, is_local, iter_capped, local_path, raise_for_status
from digest.core.statefiles import private_dir
from digest.transcripts.audio import probe

Progress = Callable[[int, int | None], None]  # (bytes so far, total if known)
NOT_AUDIO = ("text/html", "application/xhtml", "application/json", "text/xml", "application/xml")


def media_path(media_dir: Path, episode_id: str, url: str) -> Path:
    suffix = Path(url.split("?", 1)[0]).suffix.lower()
    return media_dir / f"{episode_id}{suffix if 1 < len(suffix) <= 5 else '.audio'}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # no space, quota, file size


def download(
    client: GuardedClient,
    url: str,
    target: Path,
    *,
    max_bytes: int,
    timeout: float,
    attempts: int = 3,
    feed_url: str = "",
    progress: Progress | None = None,
) -> Path:
    """Fetch `url` to `target`; partial data survives a failed attempt and is resumed."""
    if target.exists():
        return target  # complete downloads only ever appear through the rename below
    private_dir(target.parent)
    if is_local(url):
        return _copy_local(url, feed_url, target)
    part = target.with_name(target.name + ".part")
    deadline = time.monotonic() + timeout
    for attempt in range(1, attempts + 1):
        try:
            _fetch_into(
                client, url, part, max_bytes=max_bytes, deadline=deadline, progress=progress
            )
            break
        except OSError as exc:
            part.unlink(missing_ok=True)  # frees the space; the next run starts afresh
            if exc.errno in FULL:
                raise DiskFull(
                    f"{url}: cannot write {part.parent}: {exc.strerror}; free disk space "
                    "there ([storage] state_dir); the episode is retried on the next run"
                ) from exc
            raise
        except (BlockedURL, MediaError, TooLarge):
            part.unlink(missing_ok=True)
            raise
        except FetchError:
            if attempt == attempts or time.monotonic() > deadline:
                raise
            time.sleep(min(2 ** (attempt - 1), 10))
    part.replace(target)
    return target


def _fetch_into(
    client: GuardedClient,
    url: str,
    part: Path,
    *,
    max_bytes: int,
    deadline: float,
    progress: Progress | None,
) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with client.stream(url, headers) as response:
        if response.status_code == 416 and have:  # we already hold every byte
            return
        raise_for_status(response, url)
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind.startswith(NOT_AUDIO):
            raise MediaError(f"{url}: the server sent {kind}, not audio (an error page?)")
        resumed = response.status_code == 206
        size = have if resumed else 0
        total = _total(response, size)
        with part.open("ab" if resumed else "wb") as out:
            for chunk in iter_capped(
                response, max_bytes=max_bytes, deadline=deadline, url=url, already=size
            ):
                out.write(chunk)
                size += len(chunk)
                if progress:
                    progress(size, total)
        if total is not None and size < total:
            raise FetchError(f"{url}: got {size:,} of {total:,} bytes", retryable=True)


def _total(response: httpx.Response, offset: int) -> int | None:
    length = response.headers.get("content-length", "")
    return offset + int(length) if length.isdigit() else None


def _copy_local(url: str, feed_url: str, target: Path) -> Path:
    """Local enclosures only for operator-added local feeds, and only beside the feed file."""
    source = local_path(url).resolve()
    if not is_local(feed_url) or not source.is_relative_to(local_path(feed_url).resolve().parent):
        raise BlockedURL(f"{url}: local files are only read for a local feed, from its own folder")
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise FetchError(f"{url}: cannot read {source}: {exc.strerror}") from exc
    return target


def check_audio(path: Path, *, label: str, max_seconds: float) -> float:
    """Decode-probe the file; refuse non-audio and absurd lengths. Returns the duration."""
    duration = probe(path, label)
    if duration > max_seconds:
        raise MediaError(
            f"{label}: {duration / 3600:.1f} h of audio is over the "
            f"{max_seconds / 3600:g} h limit ([transcription] max_duration_hours)"
        )
    return duration
