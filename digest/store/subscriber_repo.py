"""Subscriber rows (address, timezone, send time, shows, status, the secret token) and
sign-ups awaiting confirmation (which also remember what the rate limits count).

A subscriber is found by mailbox (`digest.core.addresses.mailbox_key`), so every
spelling of one address reaches the same row; its `email` is the spelling the
reader last confirmed, which is what mail is sent to.
"""

from __future__ import annotations

import builtins
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.core.addresses import inbox_key, mailbox_key
from digest.core.errors import InvalidInput, NotFound
from digest.core.models import Cadence, ChannelChoice, Subscriber
from digest.core.topics import NO_TOPICS, Topics, parse_topics
from digest.store.exclusive import exclusive
from digest.store.schema import signups, subscribers


def new_token() -> str:
    """192 bits from the OS CSPRNG, as URL-safe text that never starts with `-` (a
    token that did would read as an option to `digest subscribers unsubscribe`)."""
    while True:
        token = secrets.token_urlsafe(24)
        if not token.startswith("-"):
            return token


def _shows(text: str | None) -> tuple[int, ...] | None:
    return tuple(json.loads(text)) if text else None


def _shows_json(shows: tuple[int, ...] | None) -> str | None:
    return json.dumps(sorted(set(shows))) if shows else None


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        timezone=row.timezone,
        send_time=row.send_time,
        status=row.status,
        unsubscribe_token=row.unsubscribe_token,
        created_at=row.created_at,
        shows=_shows(row.shows),
        topics=row.topics,
        topics_only=bool(row.topics_only),
        cadence=row.cadence,
        weekday=row.weekday,
    )


@dataclass(frozen=True)
class Preferences:
    """What a reader chooses: shows (None: all), timezone and send time (None: defaults),
    topics (none: the shows' top insights), daily or weekly (on `weekday`)."""

    shows: tuple[int, ...] | None = None
    timezone: str | None = None
    send_time: str | None = None
    topics: Topics = NO_TOPICS
    cadence: Cadence = "daily"
    weekday: int = 0  # weekly: 0 = Monday

    def values(self) -> dict[str, Any]:
        return {
            "shows": _shows_json(self.shows),
            "timezone": self.timezone,
            "send_time": self.send_time,
            "topics": self.topics.text,
            "topics_only": self.topics.only,
            "cadence": self.cadence,
            "weekday": self.weekday,
        }

    @classmethod
    def of(cls, reader: Subscriber) -> Preferences:
        """What `reader` chose, to change some of it."""
        return cls(
            reader.shows,
            reader.timezone,
            reader.send_time,
            reader.topic_filter,
            reader.cadence,
            reader.weekday,
        )


@dataclass(frozen=True)
class Signup:
    id: int
    email: str
    token: str
    preferences: Preferences
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None
    channels: ChannelChoice | None = None  # None: the reader's channels stay as they are


@dataclass(frozen=True)
class Limits:
    """What one sign-up request may use: counted and recorded in one transaction."""

    client: str  # keyed hash of the client's network
    per_client: int  # sign-ups from one client ...
    client_since: datetime  # ... since then
    per_inbox: int  # confirmation emails to one inbox ...
    inbox_since: datetime  # ... since then
    forget_before: datetime  # sign-ups older than this are deleted


@dataclass(frozen=True)
class SignupRequest:
    outcome: Literal["mail", "limited-address", "limited-client"]
    token: str = ""
    known: Subscriber | None = None  # the subscriber the address already was, if any


class SubscriberRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        email: str,
        now: datetime,
        *,
        timezone: str | None = None,
        send_time: str | None = None,
        shows: tuple[int, ...] | None = None,
        topics: Topics = NO_TOPICS,
        cadence: Cadence = "daily",
        weekday: int = 0,
    ) -> Subscriber:
        """Add an address (already validated) as active; re-adding an inactive one
        reactivates it. An operator's add needs no confirmation."""
        prefs = Preferences(shows, timezone, send_time, topics, cadence, weekday)
        with self.engine.begin() as conn:
            row = self._row(conn, email)
            if row is not None and row.status == "active":
                raise InvalidInput(f"{row.email} is already subscribed")
            self._upsert(conn, row, email, prefs, "active", now)
        return self.get(email)

    def pending(self, email: str, prefs: Preferences, now: datetime) -> Subscriber:
        """A new address from the sign-up form: kept pending (never sent a digest) until
        its confirmation link is used. An address already known keeps its row as is."""
        with self.engine.begin() as conn:
            if self._row(conn, email) is None:
                self._upsert(conn, None, email, prefs, "pending", now)
        return self.get(email)

    @staticmethod
    def _row(conn: Connection, email: str) -> Any:
        """The row of this address's mailbox (or, for a row stored twice before mailboxes
        were keyed, of this exact spelling)."""
        by_mailbox = subscribers.c.mailbox == mailbox_key(email)
        query = sa.select(subscribers).where(sa.or_(by_mailbox, subscribers.c.email == email))
        rows = conn.execute(query.order_by(subscribers.c.id)).all()
        return next((r for r in rows if r.mailbox is not None), rows[0] if rows else None)

    @staticmethod
    def _upsert(
        conn: Connection, row: Any, email: str, prefs: Preferences, status: str, now: datetime
    ) -> None:
        values = {**prefs.values(), "status": status, "email": email}
        if row is not None:
            conn.execute(subscribers.update().where(subscribers.c.id == row.id).values(**values))
            return
        conn.execute(
            subscribers.insert().values(
                unsubscribe_token=new_token(), created_at=now, mailbox=mailbox_key(email), **values
            )
        )

    def get(self, email: str) -> Subscriber:
        found = self.get_or_none(email)
        if found is None:
            raise NotFound(f"no subscriber {email}; see `digest subscribers list`")
        return found

    def get_or_none(self, email: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = self._row(conn, email)
        return None if row is None else _subscriber(row)

    def list(self, *, status: str | None = None) -> builtins.list[Subscriber]:
        query = sa.select(subscribers).order_by(subscribers.c.id)
        if status:
            query = query.where(subscribers.c.status == status)
        with self.engine.connect() as conn:
            return [_subscriber(r) for r in conn.execute(query)]

    def remove(self, email: str) -> Subscriber:
        """Delete the subscriber, their delivery history (cascade) and every sign-up of
        their mailbox: their links stop working and nothing kept names them."""
        with self.engine.begin() as conn:
            row = self._row(conn, email)
            if row is None:
                raise NotFound(f"no subscriber {email}; see `digest subscribers list`")
            conn.execute(subscribers.delete().where(subscribers.c.id == row.id))
            keys = {mailbox_key(row.email), mailbox_key(email)}
            conn.execute(signups.delete().where(signups.c.mailbox.in_(keys)))
        return _subscriber(row)

    def by_id(self, subscriber_id: int) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(subscribers).where(subscribers.c.id == subscriber_id)
            ).first()
        return _subscriber(row) if row else None

    def by_token(self, token: str) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(subscribers).where(subscribers.c.unsubscribe_token == token)
            ).first()
        return _subscriber(row) if row else None

    def set_status(self, subscriber_id: int, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                subscribers.update().where(subscribers.c.id == subscriber_id).values(status=status)
            )

    def set_preferences(self, subscriber_id: int, prefs: Preferences) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.id == subscriber_id)
                .values(**prefs.values())
            )

    def count_by_status(self) -> dict[str, int]:
        query = sa.select(subscribers.c.status, sa.func.count()).group_by(subscribers.c.status)
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(query)}

    # ------------------------------------------------------------ sign-ups
    def request_signup(
        self,
        email: str,
        prefs: Preferences,
        limits: Limits,
        now: datetime,
        expires_at: datetime,
        channels: ChannelChoice | None = None,
    ) -> SignupRequest:
        """Check both limits and record the request in one transaction that runs alone,
        so requests arriving together cannot each see room under a limit. A request
        within the limits reserves its confirmation email (`mailed`); a new address
        is stored as pending."""
        inbox = inbox_key(email)
        with exclusive(self.engine, "signups") as conn:
            if self._count(conn, signups.c.client == limits.client, limits.client_since) >= (
                limits.per_client
            ):
                return SignupRequest("limited-client")  # no write: a flood costs nothing
            self._forget(conn, limits.forget_before)
            mails = self._count(
                conn, signups.c.inbox == inbox, limits.inbox_since, signups.c.mailed.is_(True)
            )
            token = new_token()
            conn.execute(
                signups.insert().values(
                    email=email,
                    mailbox=mailbox_key(email),
                    inbox=inbox,
                    token=token,
                    client=limits.client,
                    mailed=mails < limits.per_inbox,
                    created_at=now,
                    expires_at=expires_at,
                    channels=channels.to_json() if channels else None,
                    **prefs.values(),
                )
            )
            if mails >= limits.per_inbox:
                return SignupRequest("limited-address")
            row = self._row(conn, email)
            if row is None:
                self._upsert(conn, None, email, prefs, "pending", now)
            return SignupRequest("mail", token, _subscriber(row) if row is not None else None)

    @staticmethod
    def _count(conn: Connection, where: Any, since: datetime, *more: Any) -> int:
        query = sa.select(sa.func.count()).where(where, signups.c.created_at >= since, *more)
        return int(conn.execute(query).scalar_one())

    def release_mail(self, token: str) -> None:
        """The confirmation email was not sent after all: it does not count."""
        with self.engine.begin() as conn:
            conn.execute(signups.update().where(signups.c.token == token).values(mailed=False))

    def signup(self, token: str) -> Signup | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(signups).where(signups.c.token == token)).first()
        if row is None:
            return None
        topics = parse_topics(row.topics, bool(row.topics_only))
        prefs = Preferences(
            _shows(row.shows), row.timezone, row.send_time, topics, row.cadence, row.weekday
        )
        return Signup(
            row.id,
            row.email,
            row.token,
            prefs,
            row.created_at,
            row.expires_at,
            row.confirmed_at,
            ChannelChoice.from_json(row.channels),
        )

    def confirm(self, signup: Signup, now: datetime) -> Subscriber:
        """Use a sign-up's token once: the address becomes active with its preferences,
        spelled as in this sign-up. A used token changes nothing."""
        with self.engine.begin() as conn:
            used = conn.execute(
                signups.update()
                .where(signups.c.id == signup.id, signups.c.confirmed_at.is_(None))
                .values(confirmed_at=now)
            ).rowcount
            row = self._row(conn, signup.email)
            if used:
                self._upsert(conn, row, signup.email, signup.preferences, "active", now)
                row = self._row(conn, signup.email)
        if row is None:
            raise NotFound("this sign-up's subscriber was removed")
        return _subscriber(row)

    def mails_since(self, email: str, since: datetime) -> int:
        """Confirmation emails sent to this address's inbox since `since`."""
        with self.engine.connect() as conn:
            return self._count(
                conn, signups.c.inbox == inbox_key(email), since, signups.c.mailed.is_(True)
            )

    def signups_since(self, client: str, since: datetime) -> int:
        with self.engine.connect() as conn:
            return self._count(conn, signups.c.client == client, since)

    def forget_signups(self, before: datetime) -> None:
        with self.engine.begin() as conn:
            self._forget(conn, before)

    @staticmethod
    def _forget(conn: Connection, before: datetime) -> None:
        """Sign-up records (addresses, client hashes) are kept only as long as needed, and
        an address never confirmed since `before` is forgotten with them."""
        conn.execute(signups.delete().where(signups.c.created_at < before))
        recent = sa.select(signups.c.mailbox).where(signups.c.mailbox == subscribers.c.mailbox)
        conn.execute(
            subscribers.delete().where(
                subscribers.c.status == "pending",
                subscribers.c.created_at < before,
                ~sa.exists(recent),
            )
        )
