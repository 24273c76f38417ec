"""Tables, as SQLAlchemy Core. The Alembic migrations build exactly this (a test checks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


feeds = sa.Table(
    "feeds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.Text, nullable=False, unique=True),
    sa.Column("title", sa.Text, nullable=False, server_default=""),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("last_polled_at", UTCDateTime),
    sa.Column("last_success_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("added_at", UTCDateTime, nullable=False),
    # What the last successful poll had to recover from (JSON list of strings).
    sa.Column("warnings", sa.Text, nullable=False, server_default="[]"),
)

episodes = sa.Table(
    "episodes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    sa.Column("item_key", sa.Text, nullable=False),
    sa.Column("guid", sa.Text, nullable=False, server_default=""),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("link", sa.Text, nullable=False, server_default=""),
    sa.Column("summary", sa.Text, nullable=False, server_default=""),
    sa.Column("published_at", UTCDateTime),
    sa.Column("enclosure_url", sa.Text, nullable=False, server_default=""),
    sa.Column("enclosure_type", sa.Text, nullable=False, server_default=""),
    sa.Column("enclosure_length", sa.BigInteger),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("episode_type", sa.Text, nullable=False, server_default="full"),
    sa.Column("transcript_url", sa.Text),
    sa.Column("transcript_type", sa.Text),
    # podcast:person tags (JSON list of {name, role, href}) and the podcast:chapters URL.
    sa.Column("people", sa.Text, nullable=False, server_default="[]"),
    sa.Column("chapters_url", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # When a failure that may pass (a network fault) is tried again; NULL: not scheduled.
    sa.Column("retry_at", UTCDateTime),
    # Runs that claimed the episode; part of a deployed run's idempotency key.
    sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("discovered_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("feed_id", "item_key"),
    sa.Index(None, "status"),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    sa.Column("timezone", sa.Text),
    sa.Column("send_time", sa.String(5)),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("unsubscribe_token", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("shows", sa.Text),  # JSON list of feed ids; NULL: every show, new ones too
    # One row per mailbox (subscribers.mailbox_key); `email` keeps the reader's spelling.
    sa.Column("mailbox", sa.Text, unique=True),
    sa.Column("topics", sa.Text, nullable=False, server_default=""),  # core.topics spelling
    sa.Column("topics_only", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cadence", sa.String(8), nullable=False, server_default="daily"),  # or weekly
    sa.Column("weekday", sa.Integer, nullable=False, server_default="0"),  # weekly: 0 = Monday
)

# A sign-up waiting for its confirmation link to be opened; also the rate limits' memory
# (per address: mails sent in a day; per client: sign-ups in an hour).
signups = sa.Table(
    "signups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.Text, nullable=False, index=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("shows", sa.Text),  # what the form asked for, applied on confirmation
    sa.Column("timezone", sa.Text),
    sa.Column("send_time", sa.String(5)),
    sa.Column("client", sa.String(64), nullable=False, index=True),  # keyed hash of the IP
    sa.Column("mailed", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime),
    sa.Column("mailbox", sa.Text, nullable=False, index=True),  # whose sign-up (removal)
    sa.Column("inbox", sa.Text, nullable=False, index=True),  # the per-address limit's key
    sa.Column("topics", sa.Text, nullable=False, server_default=""),
    sa.Column("topics_only", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cadence", sa.String(8), nullable=False, server_default="daily"),
    sa.Column("weekday", sa.Integer, nullable=False, server_default="0"),
    sa.Column("channels", sa.Text),  # ChannelChoice JSON; NULL: channels left as they are
)

transcripts = sa.Table(
    "transcripts",
    metadata,
    sa.Column(
        "episode_id",
        sa.String(32),
        sa.ForeignKey("episodes.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("source", sa.String(16), nullable=False),  # publisher | whisper
    sa.Column("engine", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("options_key", sa.String(32)),  # hash of decoding options (whisper only)
    sa.Column("audio_sha256", sa.String(64)),  # what was transcribed (whisper only)
    sa.Column("text_sha256", sa.String(64), nullable=False),  # what extraction will read
    sa.Column("language", sa.Text, nullable=False, server_default=""),
    sa.Column("timed", sa.Boolean, nullable=False),
    sa.Column("duration_seconds", sa.Float, nullable=False),
    sa.Column("segments", sa.Text, nullable=False),  # JSON list of {start, end, text, speaker}
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "audio_sha256", "options_key"),
)

extractions = sa.Table(
    "extractions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "episode_id",
        sa.String(32),
        sa.ForeignKey("episodes.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("text_sha256", sa.String(64), nullable=False),  # the transcript it read
    sa.Column("prompt_version", sa.String(32), nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("backend", sa.String(16), nullable=False),  # openai | extractive
    sa.Column("status", sa.String(16), nullable=False),  # ok | failed
    sa.Column("error", sa.Text),
    sa.Column("dropped", sa.Text, nullable=False, server_default="[]"),  # JSON [[text, reason]]
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("episode_id", "text_sha256", "prompt_version", "model"),
)

# The day's editor pass, cached like extraction: a re-run with the same candidates and
# prompt version asks nothing (digest.jobs.editing).
editor_answers = sa.Table(
    "editor_answers",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # sha256 of version, day, N, candidates
    sa.Column("version", sa.String(32), nullable=False),
    sa.Column("answer", sa.Text, nullable=False),  # EditorAnswer JSON
    sa.Column("created_at", UTCDateTime, nullable=False),
)

insights = sa.Table(
    "insights",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "extraction_id",
        sa.Integer,
        sa.ForeignKey("extractions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "episode_id",
        sa.String(32),
        sa.ForeignKey("episodes.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("quote", sa.Text, nullable=False),
    sa.Column("start_seconds", sa.Float),
    sa.Column("chapter", sa.Text),  # title of the chapter its quote falls in, if known
    sa.Column("importance", sa.Integer, nullable=False),
    sa.Column("prompt_version", sa.String(32), nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

llm_calls = sa.Table(
    "llm_calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("episode_id", sa.String(32), sa.ForeignKey("episodes.id", ondelete="SET NULL")),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("prompt_version", sa.String(32), nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # ok | malformed | truncated
    sa.Column("created_at", UTCDateTime, nullable=False),
    # extraction | editor (the day's editor pass: no episode)
    sa.Column("stage", sa.String(16), nullable=False, server_default="extraction"),
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("date", sa.String(10), primary_key=True),  # YYYY-MM-DD, the readers' local date
    # "all" (models.ALL_SHOWS), or the sorted feed ids of the readers' shows.
    sa.Column("selection", sa.String(200), primary_key=True, server_default="all"),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("insight_ids", sa.Text, nullable=False),  # JSON list, in the order shown
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("header", sa.Text, nullable=False, server_default=""),  # the editor's; "": ours
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("date", sa.String(10), nullable=False),
    # "email", or "<kind>:<endpoints.id>": one row per reader, edition date and channel.
    sa.Column("channel", sa.String(40), nullable=False, server_default="email"),
    # The selection key of the edition this copy carried (a reader's feed lists these).
    sa.Column("edition", sa.String(200), nullable=False, server_default=""),
    # sending: handed to the server, acceptance not yet recorded; sent: accepted;
    # failed: temporary refusal, retried; rejected: permanent refusal, not retried.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("subscriber_id", "date", "channel"),
)

# Where a reader's editions go besides (or instead of) their inbox. A reader without
# rows gets email only; once they have any, these rows are their channels.
endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("kind", sa.String(16), nullable=False),  # a CHANNELS name: email, webhook, ...
    sa.Column("target", sa.Text, nullable=False, server_default=""),  # the webhook's URL
    sa.Column("format", sa.String(16), nullable=False, server_default=""),  # json | slack
    sa.Column("secret", sa.String(64), nullable=False, server_default=""),  # HMAC key
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("disabled_at", UTCDateTime),  # a permanent refusal: no more deliveries
    sa.Column("error", sa.Text),
)


# One owner at a time for a piece of work ("episode:<id>", "send"), for as long as its
# lease runs: workers on several machines share nothing but this database.
claims = sa.Table(
    "claims",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)
