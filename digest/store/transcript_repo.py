"""Transcript rows: the text every later stage reads, keyed so nothing is transcribed twice."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.core.models import Segment, Transcript
from digest.store.schema import transcripts


@dataclass(frozen=True)
class StoredTranscript:
    episode_id: str
    transcript: Transcript
    options_key: str | None  # None for publisher transcripts
    audio_sha256: str | None
    text_sha256: str  # extraction caches on this
    created_at: datetime


def text_hash(transcript: Transcript) -> str:
    return hashlib.sha256(transcript.text.encode()).hexdigest()


def _stored(row: Any) -> StoredTranscript:
    segments = tuple(Segment(**s) for s in json.loads(row.segments))
    transcript = Transcript(
        language=row.language,
        segments=segments,
        source=row.source,
        engine=row.engine,
        model=row.model,
        timed=bool(row.timed),
    )
    return StoredTranscript(
        row.episode_id,
        transcript,
        row.options_key,
        row.audio_sha256,
        row.text_sha256,
        row.created_at,
    )


class TranscriptRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(
        self,
        episode_id: str,
        transcript: Transcript,
        now: datetime,
        *,
        options_key: str | None = None,
        audio_sha256: str | None = None,
    ) -> StoredTranscript:
        """Store (or replace, after --force) the episode's transcript."""
        values = {
            "source": transcript.source,
            "engine": transcript.engine,
            "model": transcript.model,
            "options_key": options_key,
            "audio_sha256": audio_sha256,
            "text_sha256": text_hash(transcript),
            "language": transcript.language,
            "timed": transcript.timed,
            "duration_seconds": transcript.duration,
            "segments": json.dumps([s.__dict__ for s in transcript.segments], ensure_ascii=False),
            "created_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(transcripts.delete().where(transcripts.c.episode_id == episode_id))
            conn.execute(transcripts.insert().values(episode_id=episode_id, **values))
        stored = self.get(episode_id)
        assert stored is not None
        return stored

    def get(self, episode_id: str) -> StoredTranscript | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(transcripts).where(transcripts.c.episode_id == episode_id)
            ).first()
        return _stored(row) if row else None

    def find_by_audio(self, audio_sha256: str, options_key: str) -> StoredTranscript | None:
        """The same audio already transcribed with the same options (a re-upload, a repost)."""
        query = (
            sa.select(transcripts)
            .where(transcripts.c.audio_sha256 == audio_sha256)
            .where(transcripts.c.options_key == options_key)
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _stored(row) if row else None
