"""Feed ingestion: pure parsing of RSS/Atom podcast feeds, plus a thin conditional fetcher.

Parsing takes bytes and returns a ParsedFeed, so it is tested without a network.
Real feeds are messy (feedparser's 56 iTunes fixtures show how): durations come in
five formats, GUIDs go missing or repeat, and feedparser keeps only the last of
several `podcast:transcript` tags, so those are read with a defused XML parser.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit
from xml.sax import SAXParseException

import defusedxml.ElementTree as SafeET
import feedparser

from digest.core.errors import FeedParseError, FetchError
from digest.core.models import (
    EpisodeStatus,
    FetchResult,
    ParsedEpisode,
    ParsedFeed,
    Person,
    TranscriptLink,
)
from digest.core.net import GuardedClient, is_local, local_path, raise_for_status, read_capped
from digest.feeds.repair import repair

PODCAST_NS = "https://podcastindex.org/namespace/1.0"
ENC_NS = "http://purl.oclc.org/net/rss_2.0/enc#"  # enclosures in RSS 1.0, which has none
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
# An internal DTD subset that declares entities is how billion-laughs bombs start;
# no real podcast feed needs one, so such a document is refused before parsing.
ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
AUDIO_EXTENSIONS = (".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wav", ".flac", ".mp4")


def parse_duration(value: str | None) -> float | None:
    """`itunes:duration` in its wild forms: "3723", "62:03", "1:02:03", "1:02:03.5", "1h 2m 3s"."""
    if not value:
        return None
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if re.fullmatch(r"\d+(:\d{1,2}){1,2}(\.\d+)?", text):
        seconds = 0.0
        for part in text.split(":"):
            seconds = seconds * 60 + float(part)
        return seconds
    units = re.findall(r"(\d+(?:\.\d+)?)\s*(h|hr|hours?|m|min|minutes?|s|sec|seconds?)\b", text)
    if units:
        scale = {"h": 3600, "m": 60, "s": 1}
        return sum(float(n) * scale[u[0]] for n, u in units)
    return None


def _published(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        parsed = entry.get(key)
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    return None


def _enclosure(entry: Any, base_url: str) -> tuple[str, str, int | None]:
    """The first audio enclosure (or the first enclosure at all) as (url, type, length)."""
    enclosures = [link for link in entry.get("links", []) if link.get("rel") == "enclosure"]
    if not enclosures:  # Media RSS feeds carry the audio in media:content instead
        enclosures = [
            {"href": m.get("url"), "type": m.get("type", ""), "length": m.get("filesize", "")}
            for m in entry.get("media_content", [])
            if m.get("url")
        ]
    audio = [
        e
        for e in enclosures
        if str(e.get("type", "")).startswith(("audio/", "video/"))
        or urlsplit(str(e.get("href", ""))).path.lower().endswith(AUDIO_EXTENSIONS)
    ]
    chosen = (audio or enclosures or [None])[0]
    if chosen is None:
        return "", "", None
    length = str(chosen.get("length", "")).strip()
    href = urljoin(base_url, str(chosen.get("href", "")).strip())
    return href, str(chosen.get("type", "")), int(length) if length.isdigit() else None


def episode_key(guid: str, enclosure_url: str, title: str, published: datetime | None) -> str:
    """Identity of an item within its feed: GUID, else enclosure URL, else hash of title + date."""
    if guid:
        return f"guid:{guid}"
    if enclosure_url:
        return f"url:{enclosure_url}"
    stamp = published.isoformat() if published else ""
    return "hash:" + hashlib.sha256(f"{title}\n{stamp}".encode()).hexdigest()[:32]


def episode_id(feed_url: str, key: str) -> str:
    """Stable, URL-safe episode id: the same item in the same feed always maps here."""
    return hashlib.sha256(f"{feed_url}\n{key}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ItemTags:
    """The Podcasting 2.0 tags of one item, which feedparser does not keep whole."""

    transcripts: list[TranscriptLink]
    people: list[Person]
    chapters_url: str
    enclosure: tuple[str, str] = ("", "")  # RSS 1.0 `enc:enclosure` (url, type)


def _item_tags(content: bytes) -> tuple[list[Person], list[ItemTags]] | None:
    """Channel people, then each item's tags in document order; None if the XML (after
    repair) is still broken, in which case feedparser's values are the fallback."""
    try:
        root = SafeET.fromstring(content)
    except Exception:
        return None
    channel = next((el for el in root.iter() if _local(el.tag) in ("channel", "feed")), root)
    items = [el for el in root.iter() if _local(el.tag) in ("item", "entry")]
    channel_people = [_person(tag) for tag in channel.findall(f"{{{PODCAST_NS}}}person")]
    return [p for p in channel_people if p], [_tags_of(item) for item in items]


def _tags_of(item: Any) -> ItemTags:
    chapters = item.find(f"{{{PODCAST_NS}}}chapters")
    enc = item.find(f"{{{ENC_NS}}}enclosure")
    return ItemTags(
        transcripts=[
            TranscriptLink(
                url=tag.get("url", "").strip(),
                type=tag.get("type", "").strip(),
                language=tag.get("language", "").strip(),
                rel=tag.get("rel", "").strip(),
            )
            for tag in item.iter(f"{{{PODCAST_NS}}}transcript")
            if tag.get("url")
        ],
        people=[p for p in (_person(t) for t in item.iter(f"{{{PODCAST_NS}}}person")) if p],
        chapters_url=(chapters.get("url", "") if chapters is not None else "").strip(),
        enclosure=(
            (enc.get(f"{{{RDF_NS}}}resource", "").strip(), enc.get(f"{{{ENC_NS}}}type", ""))
            if enc is not None
            else ("", "")
        ),
    )


def _person(tag: Any) -> Person | None:
    name = _clean(tag.text, limit=200)
    if not name:
        return None
    role = _clean(tag.get("role"), limit=50).lower() or "host"
    return Person(name, role, (tag.get("href") or "").strip())


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _fallback_transcripts(entry: Any) -> list[TranscriptLink]:
    tag = entry.get("podcast_transcript")
    if isinstance(tag, dict) and tag.get("url"):
        return [TranscriptLink(url=str(tag["url"]), type=str(tag.get("type", "")))]
    return []


# C0/C1 controls (header injection) and bidi overrides/isolates, which let a title
# display as something other than what it says ("Trojan Source"); LRM/RLM stay.
UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+")
MAX_TITLE = 300  # characters; a 10,000-character title is an attack or a mistake


def _clean(text: Any, limit: int = MAX_TITLE) -> str:
    """Collapse whitespace, strip characters that could inject headers or disguise text,
    and cap the length (with an ellipsis)."""
    cleaned = re.sub(r"\s+", " ", UNSAFE_CHARACTERS.sub(" ", str(text or ""))).strip()
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


def parse_feed(content: bytes, base_url: str) -> ParsedFeed:
    """Parse feed bytes into episodes; raise FeedParseError if it is not a usable feed.

    Refused: entity declarations (bombs, XXE) and HTML pages. Recovered, with a warning
    each, as podcast apps do: the mistakes `feed_repair` fixes, and XML still broken
    after that, read by feedparser's lenient parser."""
    if ENTITY_DECL.search(content):
        raise FeedParseError(f"{base_url}: the document declares XML entities; refused as unsafe")
    head = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:200].lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise FeedParseError(f"{base_url}: this is an HTML page, not an RSS or Atom feed")
    repaired, warnings = repair(content)
    parsed = feedparser.parse(repaired)
    reason = parsed.get("bozo_exception")
    if not parsed.get("version") and not parsed.entries:
        raise FeedParseError(f"{base_url}: not an RSS or Atom feed ({reason or 'no feed found'})")
    entries = list(parsed.entries)
    if isinstance(reason, SAXParseException):
        # feedparser puts a declaration line above a document that has none: count it out,
        # so the line is the publisher's.
        line = (reason.getLineNumber() or 1) - (0 if repaired.startswith(b"<?xml") else 1)
        where = f"malformed XML at line {line}, column {reason.getColumnNumber()}"
        entries = _whole_entries(entries, repaired, warnings)
        if not entries:  # a cut-off document must not pass for a show with no episodes
            raise FeedParseError(
                f"{base_url}: {where}: {reason.getMessage()}; no complete item could be read "
                "(the document is cut off or broken)"
            )
        warnings.append(f"{where}: {reason.getMessage()}; read leniently")
    tags = _item_tags(repaired)
    channel_people, item_tags = tags if tags else ([], [])
    episodes: list[ParsedEpisode] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(entries):
        found = item_tags[index] if index < len(item_tags) else None
        extra = found or ItemTags(_fallback_transcripts(entry), [], "")
        episode = _episode(entry, base_url, extra, channel_people)
        if episode.key in seen:
            if seen[episode.key] == episode.enclosure_url or not episode.enclosure_url:
                warnings.append(f"duplicate item {episode.key!r} ignored")
                continue
            # Same GUID, different audio: a publisher reusing GUIDs. Keep both, told apart by URL.
            warnings.append(f"GUID reused for {episode.enclosure_url}; told apart by enclosure URL")
            episode = replace(episode, key=f"url:{episode.enclosure_url}")
            if episode.key in seen:
                continue
        seen[episode.key] = episode.enclosure_url
        episodes.append(episode)
    feed = parsed.feed
    return ParsedFeed(
        title=_clean(feed.get("title")),
        link=str(feed.get("link", "")),
        episodes=tuple(episodes),
        warnings=tuple(warnings),
    )


ITEM_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>", re.IGNORECASE)


def _whole_entries(entries: list[Any], document: bytes, warnings: list[str]) -> list[Any]:
    """The items a broken document holds whole: those whose closing tag it reached. An
    item cut off mid-way (its enclosure or GUID perhaps missing) is left for the poll
    that gets the whole document, so it is never recorded half."""
    whole = len(ITEM_END.findall(document))
    if len(entries) > whole:
        cut = entries[whole:]
        titles = ", ".join(repr(_clean(e.get("title"), limit=60)) for e in cut)
        warnings.append(
            f"{len(cut)} item(s) cut off mid-way ignored until the feed is whole: {titles}"
        )
    return entries[:whole]


def host_title(url: str) -> str:
    """A feed without a title is named after its host, as podcast apps do (a local file
    after its name)."""
    parts = urlsplit(url)
    return parts.hostname or unquote(PurePosixPath(parts.path).stem) or url


def _title_from_file(url: str) -> str:
    """An item without a title is named after its enclosure's file: `Ep%2012.mp3` is
    "Ep 12"."""
    return _clean(unquote(PurePosixPath(urlsplit(url).path).stem))


def _episode(
    entry: Any, base_url: str, tags: ItemTags, channel_people: list[Person]
) -> ParsedEpisode:
    guid = _clean(entry.get("id"), limit=2000)  # identity: cap only absurd lengths
    enclosure_url, enclosure_type, length = _enclosure(entry, base_url)
    if not enclosure_url and tags.enclosure[0]:
        enclosure_url, enclosure_type = urljoin(base_url, tags.enclosure[0]), tags.enclosure[1]
    title = _clean(entry.get("title")) or _title_from_file(enclosure_url) or "(untitled)"
    published = _published(entry)
    transcripts = tags.transcripts
    link = str(entry.get("link", ""))
    if not link.lower().startswith(("http://", "https://")):
        link = ""  # feedparser copies a non-URL GUID into link
    return ParsedEpisode(
        key=episode_key(guid, enclosure_url, title, published),
        guid=guid,
        title=title,
        link=link,
        summary=str(entry.get("summary", ""))[:5000],
        published_at=published,
        enclosure_url=enclosure_url,
        enclosure_type=enclosure_type,
        enclosure_length=length,
        duration_seconds=parse_duration(entry.get("itunes_duration")),
        episode_type=_clean(entry.get("itunes_episodetype")).lower() or "full",
        transcripts=tuple(
            sorted(
                (
                    TranscriptLink(urljoin(base_url, t.url), t.type, t.language, t.rel)
                    for t in transcripts
                ),
                key=transcript_rank,
            )
        ),
        people=tuple(tags.people or channel_people),
        chapters_url=urljoin(base_url, tags.chapters_url) if tags.chapters_url else "",
    )


def fetch_feed(
    client: GuardedClient,
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
) -> FetchResult:
    """Conditional GET (ETag / Last-Modified); a 304 comes back with empty content."""
    if is_local(url):
        return _read_local(url, last_modified, max_bytes)
    headers = {"Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + client.timeout
    with client.stream(url, headers) as response:
        final_url = str(response.url)
        if response.status_code == 304:
            return FetchResult(final_url, True, b"", etag, last_modified)
        raise_for_status(response, url)
        body = read_capped(response, max_bytes=max_bytes, deadline=deadline, url=url)
        return FetchResult(
            url=final_url,
            not_modified=False,
            content=body,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            content_type=response.headers.get("content-type", ""),
        )


def _read_local(url: str, last_modified: str | None, max_bytes: int) -> FetchResult:
    path = local_path(url)
    try:
        stat = path.stat()
        stamp = formatdate(stat.st_mtime, usegmt=True)
        if stamp == last_modified:
            return FetchResult(url, True, b"", None, last_modified)
        if stat.st_size > max_bytes:
            raise FetchError(f"{url}: {stat.st_size:,} bytes is over the {max_bytes:,}-byte limit")
        return FetchResult(url, False, path.read_bytes(), None, stamp, "application/xml")
    except OSError as exc:
        raise FetchError(f"{url}: cannot read feed file: {exc.strerror}") from exc


# Timed formats first: they give insights their timestamps.
TRANSCRIPT_PREFERENCE = ("json", "vtt", "srt", "subrip", "html", "plain")


def transcript_rank(link: TranscriptLink) -> int:
    """Lower is better; unknown types last (they are sniffed on download anyway)."""
    kind = (link.type + " " + urlsplit(link.url).path).lower()
    for rank, marker in enumerate(TRANSCRIPT_PREFERENCE):
        if marker in kind:
            return rank
    return len(TRANSCRIPT_PREFERENCE)


def initial_status(
    item: ParsedEpisode, *, first_poll: bool, now: datetime, lookback_hours: int
) -> tuple[EpisodeStatus, str | None]:
    """What a newly seen item becomes: pending work, or skipped with the reason why."""
    if item.episode_type == "trailer":
        return "skipped", "trailer"
    if not item.enclosure_url and not item.transcripts:
        return "skipped", "no audio enclosure and no transcript"
    if first_poll:
        if item.published_at is None:
            return "skipped", "back catalogue: undated item on the feed's first poll"
        age_hours = (now - item.published_at).total_seconds() / 3600
        if age_hours > lookback_hours:
            return "skipped", f"back catalogue: published before the {lookback_hours} h lookback"
    return "pending", None
