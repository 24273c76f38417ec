"""Transcribing: an episode to its transcript, trying the cheapest source first.

1. A stored transcript (nothing is transcribed twice unless `force`).
2. The publisher's own transcript: the audio is never downloaded.
3. Whisper on the downloaded audio, unless the same audio was already transcribed
   with the same options (reposts and re-uploads are common).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.core.errors import DigestError, FetchError, MediaError, TranscriptError
from digest.core.models import Episode, Transcript
from digest.core.net import GuardedClient, raise_for_status, read_capped
from digest.core.statefiles import write_private
from digest.jobs.extraction import Extractor, ExtractResult
from digest.jobs.leases import Leases
from digest.store import Store, StoredTranscript
from digest.transcripts.captions import parse_transcript
from digest.transcripts.engines import EngineOptions, cache_key, engine_options
from digest.transcripts.media import check_audio, download, media_path, sha256_file
from digest.transcripts.worker import WhisperWorker

log = logging.getLogger("digest.transcribe")
MAX_TRANSCRIPT_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class TranscriptResult:
    episode_id: str
    title: str
    # waiting: a transient cause (a full disk); the episode stays pending, no attempt used;
    # claimed: another worker is on it (its lease is live), so this run leaves it alone
    outcome: Literal["transcribed", "cached", "failed", "waiting", "claimed"]
    source: str | None = None  # publisher | whisper
    engine: str | None = None
    audio_seconds: float = 0.0
    error: str | None = None


@dataclass
class Hooks:
    """Progress callbacks for a UI: bytes downloaded, then seconds transcribed."""

    downloaded: Callable[[int, int | None], None] | None = None
    transcribing: Callable[[float, float], None] | None = None  # (done, total) seconds


Guard = Callable[[], AbstractContextManager[Any]]


class TranscriptSteps(Protocol):
    """The two steps to a transcript, as one process runs them (`LocalSteps`) or as an
    orchestrator runs them (each a task with its own retries)."""

    def obtain(self, episode: Episode) -> TranscriptResult | Path:
        """A transcript without Whisper (stored or the publisher's), else the audio."""
        ...

    def transcribe(self, episode: Episode, media: Path) -> TranscriptResult:
        """Whisper (or the transcript of identical audio) for downloaded media."""
        ...


Fail = Callable[[Episode, BaseException], TranscriptResult]


def may_pass(exc: BaseException) -> bool:
    """A failure worth another attempt later: a network fault on the way to the item
    (refused, reset, timeout, 5xx, 429), or a surprise nobody classified. A 404, audio
    that is not audio, a file over the limits will fail the same way again."""
    return exc.retryable if isinstance(exc, DigestError) else True


def retry_time(episode: Episode, config: Config, now: datetime) -> datetime | None:
    """When the next attempt is due: `retry_after_minutes`, doubling with each failure;
    None once this failure uses the last of `max_attempts`."""
    t = config.transcription
    if episode.attempts + 1 >= t.max_attempts:
        return None
    return now + timedelta(minutes=t.retry_after_minutes * 2**episode.attempts)


def obtain_transcript(episode: Episode, steps: TranscriptSteps, fail: Fail) -> TranscriptResult:
    """The one way to a transcript: any failure is recorded on the episode and returned."""
    try:
        got = steps.obtain(episode)
        return got if isinstance(got, TranscriptResult) else steps.transcribe(episode, got)
    except Exception as exc:
        return fail(episode, exc)


class Transcription:
    """Transcribes episodes one by one with one HTTP client and one warm Whisper worker.

    `transcribe` runs every step and records a failure on the episode. The steps
    (`ready`, `download`, `transcribe_media`) raise instead, so an orchestrator can
    run each as a task with its own retries and call `fail` when retries run out.
    `whisper_guard` wraps each Whisper run (Prefect holds a concurrency slot there).
    """

    def __init__(self, store: Store, config: Config, *, whisper_guard: Guard = nullcontext) -> None:
        self.store = store
        self.config = config
        self.options: EngineOptions = engine_options(config)  # config errors fail fast
        t = config.transcription
        self.client = GuardedClient(
            allow_private=config.feeds.allow_private_addresses,
            timeout=min(float(t.download_timeout_seconds), 300.0),
        )
        self.worker = WhisperWorker()
        self.whisper_guard = whisper_guard
        self.leases = Leases(store, config.orchestration.lease_seconds)
        self.media_dir = config.state_dir / "media"
        self.transcript_dir = config.state_dir / "transcripts"

    def close(self) -> None:
        self.client.close()
        self.worker.close()

    def __enter__(self) -> Transcription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transcribe(
        self, episode: Episode, *, force: bool = False, hooks: Hooks | None = None
    ) -> TranscriptResult:
        """Transcribe one episode; any failure is recorded on it and returned, not raised."""
        return obtain_transcript(episode, LocalSteps(self, None, force, hooks), self.fail)

    def fail(self, episode: Episode, exc: BaseException) -> TranscriptResult:
        """Record why the episode failed (its attempts count up) and say so; a transient
        cause (a full disk) leaves it pending without using an attempt."""
        if isinstance(exc, DigestError):
            message = f"{episode.title!r}: {exc}"
        else:  # a library surprise still fails only this episode
            log.error("unexpected error processing %s", episode.id, exc_info=exc)
            message = f"{episode.title!r}: unexpected {type(exc).__name__}: {exc}"
        if isinstance(exc, DigestError) and exc.transient:
            self.store.episodes.set_status(episode.id, "pending", utcnow(), error=message)
            return TranscriptResult(episode.id, episode.title, "waiting", error=message)
        now = utcnow()
        retry_at = retry_time(episode, self.config, now) if may_pass(exc) else None
        self.store.episodes.record_failure(episode.id, now, message, retry_at)
        return TranscriptResult(episode.id, episode.title, "failed", error=message)

    def ready(self, episode: Episode, *, force: bool = False) -> TranscriptResult | None:
        """A transcript without Whisper: the stored one, else the publisher's; or None."""
        existing = None if force else self.store.transcripts.get(episode.id)
        if existing is not None:
            self._mark_transcribed(episode)
            return self._result(episode, existing.transcript, "cached")
        stored = self._from_publisher(episode)
        return self._finish(episode, stored) if stored else None

    def download(self, episode: Episode, hooks: Hooks | None = None) -> Path:
        """The enclosure on disk, checked to be audio within the length limit."""
        if not episode.enclosure_url:
            raise TranscriptError("no audio enclosure and no usable publisher transcript")
        t = self.config.transcription
        target = media_path(self.media_dir, episode.id, episode.enclosure_url)
        download(
            self.client,
            episode.enclosure_url,
            target,
            max_bytes=t.max_audio_bytes,
            timeout=float(t.download_timeout_seconds),
            feed_url=episode.feed_url,
            progress=(hooks or Hooks()).downloaded,
        )
        try:
            check_audio(
                target, label=episode.enclosure_url, max_seconds=t.max_duration_hours * 3600
            )
        except MediaError:
            target.unlink(missing_ok=True)  # retrying cannot turn it into audio
            raise
        return target

    def transcribe_media(
        self, episode: Episode, media: Path, *, force: bool = False, hooks: Hooks | None = None
    ) -> TranscriptResult:
        """Whisper (or the transcript of identical audio) for downloaded media."""
        t = self.config.transcription
        try:
            audio_hash = sha256_file(media)
            key = cache_key(self.options, self.config.transcription)
            reused = None if force else self.store.transcripts.find_by_audio(audio_hash, key)
            transcript = reused.transcript if reused else self._whisper(media, hooks or Hooks())
            if not transcript.segments:
                raise TranscriptError("Whisper heard no speech in the audio")
            stored = self.store.transcripts.save(
                episode.id, transcript, utcnow(), options_key=key, audio_sha256=audio_hash
            )
        finally:
            if not t.keep_audio:
                media.unlink(missing_ok=True)
        return self._finish(episode, stored)

    def _whisper(self, media: Path, hooks: Hooks) -> Transcript:
        duration = check_audio(media, label=media.name, max_seconds=float("inf"))
        on_progress = hooks.transcribing

        def report(done: float) -> None:
            if on_progress is not None:
                on_progress(done, duration)

        with self.whisper_guard():
            return self.worker.transcribe(
                media,
                self.options,
                timeout=float(self.config.transcription.timeout_seconds),
                progress=report,
            )

    def _finish(self, episode: Episode, stored: StoredTranscript) -> TranscriptResult:
        t = stored.transcript
        log.info("%s: %.0f s transcript from %s (%s)", episode.title, t.duration, t.engine, t.model)
        self._write_json(stored)
        self._mark_transcribed(episode)
        return self._result(episode, stored.transcript, "transcribed")

    def _result(
        self, episode: Episode, transcript: Transcript, outcome: Literal["transcribed", "cached"]
    ) -> TranscriptResult:
        return TranscriptResult(
            episode.id,
            episode.title,
            outcome,
            transcript.source,
            transcript.engine,
            transcript.duration,
        )

    def _mark_transcribed(self, episode: Episode) -> None:
        if episode.status in ("pending", "failed", "skipped"):
            self.store.episodes.set_status(episode.id, "transcribed", utcnow())

    def _from_publisher(self, episode: Episode) -> StoredTranscript | None:
        if not episode.transcript_url:
            return None
        url = episode.transcript_url
        try:
            with self.client.stream(url) as response:
                raise_for_status(response, url)
                body = read_capped(
                    response,
                    max_bytes=MAX_TRANSCRIPT_BYTES,
                    deadline=time.monotonic() + 120,
                    url=url,
                )
                kind = response.headers.get("content-type", episode.transcript_type or "")
            transcript = parse_transcript(
                body, declared_type=kind, url=url, duration=episode.duration_seconds
            )
        except (FetchError, TranscriptError) as exc:
            if not episode.enclosure_url:
                raise
            log.warning(
                "%s: publisher transcript unusable, transcribing the audio: %s", episode.title, exc
            )
            return None
        return self.store.transcripts.save(episode.id, transcript, utcnow())

    def _write_json(self, stored: StoredTranscript) -> None:
        """A readable copy beside the database: `state/transcripts/<episode id>.json`."""
        path = self.transcript_dir / f"{stored.episode_id}.json"
        data = {
            **stored.transcript.to_dict(),
            "episode_id": stored.episode_id,
            "text_sha256": stored.text_sha256,
        }
        write_private(path, json.dumps(data, ensure_ascii=False, indent=1).encode())


@dataclass(frozen=True)
class LocalSteps:
    """The steps of an episode's run, all in this process: what `digest process` runs
    (the process-episode flow runs each as a task instead). The one step adapter."""

    transcription: Transcription
    extractor: Extractor | None = None  # None: transcribe only
    force: bool = False
    hooks: Hooks | None = None

    def obtain(self, episode: Episode) -> TranscriptResult | Path:
        done = self.transcription.ready(episode, force=self.force)
        return done if done is not None else self.transcription.download(episode, self.hooks)

    def transcribe(self, episode: Episode, media: Path) -> TranscriptResult:
        return self.transcription.transcribe_media(
            episode, media, force=self.force, hooks=self.hooks
        )

    def extract(self, episode: Episode) -> ExtractResult:
        assert self.extractor is not None, "LocalSteps built to transcribe only"
        return self.extractor.extract(episode, force=self.force)
