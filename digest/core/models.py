"""Value types passed between stages: small, frozen, JSON-serialisable."""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from digest.core.topics import Topics, parse_topics

EpisodeStatus = Literal["pending", "skipped", "failed", "transcribed", "extracted"]
SubscriberStatus = Literal["pending", "active", "paused", "bounced", "unsubscribed"]


@dataclass(frozen=True)
class TranscriptLink:
    """A publisher transcript announced by a `podcast:transcript` tag."""

    url: str
    type: str  # MIME type as the feed states it; sniffed again on download
    language: str = ""
    rel: str = ""  # "captions" marks timed captions


@dataclass(frozen=True)
class Person:
    """Someone a `podcast:person` tag names: who hosts, who is the guest."""

    name: str
    role: str = "host"  # the Podcasting 2.0 default
    href: str = ""


@dataclass(frozen=True)
class Chapter:
    """One chapter of an episode, from its `podcast:chapters` JSON file."""

    start: float  # seconds
    title: str


def chapter_at(chapters: Sequence[Chapter], seconds: float | None) -> Chapter | None:
    """The chapter under way at `seconds` (the last one started by then)."""
    if seconds is None or not chapters:
        return None
    at = bisect.bisect_right([c.start for c in chapters], seconds) - 1
    return chapters[at] if at >= 0 else None


@dataclass(frozen=True)
class ParsedEpisode:
    """One feed item as parsed, before it meets the store."""

    key: str  # identity within the feed: GUID, else enclosure URL, else hash
    guid: str
    title: str
    link: str  # the episode's web page, if the feed gives one
    summary: str
    published_at: datetime | None
    enclosure_url: str
    enclosure_type: str
    enclosure_length: int | None
    duration_seconds: float | None
    episode_type: str  # itunes:episodeType: full, trailer or bonus
    transcripts: tuple[TranscriptLink, ...] = ()
    people: tuple[Person, ...] = ()  # the item's podcast:person tags, else the channel's
    chapters_url: str = ""  # podcast:chapters (JSON), fetched when the episode is extracted


@dataclass(frozen=True)
class ParsedFeed:
    title: str  # "" when the document names none
    link: str
    episodes: tuple[ParsedEpisode, ...]
    warnings: tuple[str, ...] = ()  # what was wrong and recovered: shown, not an error


@dataclass(frozen=True)
class FetchResult:
    """What one conditional fetch returned."""

    url: str  # the URL finally answered, after redirects
    not_modified: bool
    content: bytes
    etag: str | None
    last_modified: str | None
    content_type: str = ""


@dataclass(frozen=True)
class Feed:
    id: int
    url: str
    title: str
    etag: str | None
    last_modified: str | None
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    added_at: datetime
    warnings: tuple[str, ...] = ()  # what its last successful poll had to recover from


@dataclass(frozen=True)
class Episode:
    id: str  # stable: hash of feed URL and the item's identity key
    feed_id: int
    feed_url: str
    show_title: str
    guid: str
    title: str
    link: str
    summary: str
    published_at: datetime | None
    enclosure_url: str
    enclosure_type: str
    enclosure_length: int | None
    duration_seconds: float | None
    transcript_url: str | None
    transcript_type: str | None
    status: EpisodeStatus
    error: str | None
    discovered_at: datetime
    attempts: int = 0  # failed processing attempts so far
    transcript_source: str | None = None  # publisher | whisper, once transcribed
    transcript_engine: str | None = None  # e.g. faster-whisper, publisher:vtt
    people: tuple[Person, ...] = ()  # podcast:person: who hosts, who is the guest
    chapters_url: str = ""  # podcast:chapters JSON, if the feed names one
    retry_at: datetime | None = None  # a failure that may pass is tried again from then
    runs: int = 0  # runs that claimed it (a deployed run's idempotency key carries it)


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the episode
    end: float
    text: str
    speaker: str = ""  # from publisher transcripts that name voices
    # Whisper's own confidence, when Whisper made the segment: mean token log-probability,
    # the chance it is silence, and gzip compression ratio (high: repeated, looping text).
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None

    @property
    def doubtful(self) -> bool:
        """Whisper's own thresholds for a decode it would retry: likely misheard. A high
        `no_speech_prob` alone is not one: Whisper takes a segment for silence only when
        its tokens are also unlikely (avg_logprob < -1, already counted here). Read
        alone it flagged clear speech on some CPUs (0.95 on an AMD EPYC, where the
        kernels CTranslate2 picks differ) and emptied an episode of insights."""
        return (self.avg_logprob is not None and self.avg_logprob < -1.0) or (
            self.compression_ratio is not None and self.compression_ratio > 2.4
        )


TranscriptSource = Literal["publisher", "whisper"]


@dataclass(frozen=True)
class Transcript:
    language: str
    segments: tuple[Segment, ...]
    source: TranscriptSource
    engine: str  # faster-whisper, openai-whisper, openai, or publisher:<format>
    model: str  # model name or path; the publisher format for publisher transcripts
    timed: bool = True  # False: times were estimated from word positions

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def duration(self) -> float:
        return max((s.end for s in self.segments), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return to_json(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        segments = tuple(Segment(**s) for s in data["segments"])
        return cls(**{**data, "segments": segments})


@dataclass(frozen=True)
class Insight:
    """One grounded insight, as stored and as the digest shows it."""

    id: str  # stable: hash of episode, prompt version and quote
    episode_id: str
    text: str  # 2-3 self-contained sentences
    quote: str  # verbatim passage of the transcript that backs it
    start_seconds: float | None  # where the quote starts in the audio
    importance: int  # 1-10, from the model (or the extractive score)
    prompt_version: str
    model: str
    chapter: str | None = None  # the chapter its quote falls in, when the feed has chapters


@dataclass(frozen=True)
class DigestItem:
    """An insight with what a reader needs to place it: show, episode, links."""

    insight: Insight
    show_title: str
    episode_title: str
    episode_url: str
    audio_url: str
    published_at: datetime | None

    @property
    def moment_url(self) -> str:
        """The audio at the quote: a media fragment (`#t=SECONDS`) that players honour."""
        if not self.audio_url:
            return ""
        start = self.insight.start_seconds
        return f"{self.audio_url}#t={int(start)}" if start is not None else self.audio_url


Cadence = Literal["daily", "weekly"]


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    timezone: str | None  # None: the [digest] default
    send_time: str | None  # HH:MM; None: the [digest] default
    status: SubscriberStatus
    unsubscribe_token: str
    created_at: datetime
    shows: tuple[int, ...] | None = None  # feed ids; None: every show, including new ones
    topics: str = ""  # followed across shows, as `digest.core.topics` spells them
    topics_only: bool = False  # a day with nothing on the topics sends nothing
    cadence: Cadence = "daily"
    weekday: int = 0  # weekly readers' day: 0 = Monday ... 6 = Sunday

    @property
    def subscribed(self) -> bool:
        """On the list: getting digests, or paused by their own choice."""
        return self.status in ("active", "paused")

    @property
    def topic_filter(self) -> Topics:
        return parse_topics(self.topics, self.topics_only)

    @property
    def selection(self) -> str:
        """The key of the edition this subscriber reads: their shows (`selection_key`),
        then their topics' key when they follow some, then `w` for a weekly edition."""
        parts = [selection_key(self.shows), self.topic_filter.key, WEEKLY if self.weekly else ""]
        return "|".join(p for p in parts if p)

    @property
    def weekly(self) -> bool:
        return self.cadence == "weekly"


@dataclass(frozen=True)
class Endpoint:
    """One of a reader's channels: where their editions go (`kind` names a channel in
    `digest.core.registry.CHANNELS`)."""

    id: int  # 0: the implicit email of a reader without endpoint rows
    subscriber_id: int
    kind: str
    target: str = ""  # a webhook's URL
    format: str = ""  # a webhook's payload: json | slack
    secret: str = field(default="", repr=False)  # a webhook's HMAC key
    disabled: str | None = None  # why it gets nothing any more (a permanent refusal)

    @property
    def key(self) -> str:
        """The ledger's name for it: "email", or "<kind>:<id>"."""
        return self.kind if self.kind == "email" else f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class ChannelChoice:
    """Where a reader's form asks their editions to go. Applied whole (a channel not
    chosen is removed), because the form shows every channel at once; a webhook kept
    at the same URL and format keeps its secret, a feed kept keeps its link."""

    email: bool = True
    feed: bool = False
    webhook_url: str = ""  # "": no webhook
    webhook_format: str = "json"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> ChannelChoice | None:
        return cls(**json.loads(text)) if text else None


ALL_SHOWS = "all"  # the selection of readers who follow every show, and the archive's
WEEKLY = "w"  # the last part of a weekly edition's selection key
CADENCES = ("daily", "weekly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def selection_key(shows: tuple[int, ...] | None) -> str:
    """ALL_SHOWS, or the sorted feed ids: readers with the same shows share one edition."""
    return ALL_SHOWS if not shows else ",".join(str(i) for i in sorted(set(shows)))


def selection_feeds(key: str) -> tuple[int, ...] | None:
    shows = key.split("|", 1)[0]  # without the topics' key
    return None if shows == ALL_SHOWS else tuple(int(i) for i in shows.split(","))


@dataclass(frozen=True)
class FeedPollResult:
    """The outcome of polling one feed; errors are data here, not exceptions."""

    feed_url: str
    outcome: Literal["updated", "not_modified", "failed"]
    new_episodes: int = 0
    skipped_episodes: int = 0
    error: str | None = None
    new_episode_ids: tuple[str, ...] = ()  # pending work this poll found
    consecutive_failures: int = 0  # after this poll


def to_json(value: Any) -> Any:
    """Turn a value type (or a list of them) into JSON-ready data, datetimes as ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


UNSUBSCRIBE = "%%UNSUBSCRIBE_URL%%"  # placeholders: URL-safe, so safe in HTML and text
MANAGE = "%%MANAGE_URL%%"


@dataclass(frozen=True)
class EmailContent:
    """One date's email, with placeholders where each subscriber's links go."""

    date: str
    subject: str
    text: str
    html: str

    def personalise(self, unsubscribe_url: str, manage_url: str) -> tuple[str, str]:
        def fill(body: str) -> str:
            return body.replace(UNSUBSCRIBE, unsubscribe_url).replace(MANAGE, manage_url)

        return fill(self.text), fill(self.html)


@dataclass(frozen=True)
class Edition:
    """One date's top insights for one choice of shows, as every channel delivers it: the
    items, and the email rendered once (personal links left as placeholders)."""

    date: str
    selection: str  # ALL_SHOWS or the sorted feed ids (see selection_key)
    items: tuple[DigestItem, ...]
    email: EmailContent
