"""Subscriber rows (address, timezone, send time, shows, status, the secret token) and
sign-ups awaiting confirmation (which also remember what the rate limits count)."""

from __future__ import annotations

import builtins
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digest.errors import InvalidInput, NotFound
from digest.models import Subscriber
from digest.store.schema import signups, subscribers


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
    )


@dataclass(frozen=True)
class Preferences:
    """What a reader chooses: shows (None: all), timezone and send time (None: defaults)."""

    shows: tuple[int, ...] | None = None
    timezone: str | None = None
    send_time: str | None = None

    def values(self) -> dict[str, Any]:
        return {
            "shows": _shows_json(self.shows),
            "timezone": self.timezone,
            "send_time": self.send_time,
        }


@dataclass(frozen=True)
class Signup:
    id: int
    email: str
    token: str
    preferences: Preferences
    created_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None


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
    ) -> Subscriber:
        """Add an address (already validated) as active; re-adding an inactive one
        reactivates it. An operator's add needs no confirmation."""
        prefs = Preferences(shows, timezone, send_time)
        with self.engine.begin() as conn:
            row = self._row(conn, email)
            if row is not None and row.status == "active":
                raise InvalidInput(f"{email} is already subscribed")
            self._upsert(conn, row, email, prefs, "active", now)
        return self.get(email)

    def pending(self, email: str, prefs: Preferences, now: datetime) -> Subscriber:
        """A new address from the sign-up form: kept pending (never sent a digest) until
        its confirmation link is used. An address already known keeps its row as is."""
        with self.engine.begin() as conn:
            row = self._row(conn, email)
            if row is None:
                self._upsert(conn, None, email, prefs, "pending", now)
        return self.get(email)

    @staticmethod
    def _row(conn: Connection, email: str) -> Any:
        return conn.execute(sa.select(subscribers).where(subscribers.c.email == email)).first()

    @staticmethod
    def _upsert(
        conn: Connection, row: Any, email: str, prefs: Preferences, status: str, now: datetime
    ) -> None:
        values = {**prefs.values(), "status": status}
        if row is not None:
            conn.execute(subscribers.update().where(subscribers.c.id == row.id).values(**values))
            return
        # 192 bits from the OS CSPRNG: unguessable, and unique per subscriber.
        token = secrets.token_urlsafe(24)
        conn.execute(
            subscribers.insert().values(
                email=email, unsubscribe_token=token, created_at=now, **values
            )
        )

    def get(self, email: str) -> Subscriber:
        with self.engine.connect() as conn:
            row = self._row(conn, email)
        if row is None:
            raise NotFound(f"no subscriber {email}; see `digest subscribers list`")
        return _subscriber(row)

    def list(self, *, status: str | None = None) -> builtins.list[Subscriber]:
        query = sa.select(subscribers).order_by(subscribers.c.id)
        if status:
            query = query.where(subscribers.c.status == status)
        with self.engine.connect() as conn:
            return [_subscriber(r) for r in conn.execute(query)]

    def remove(self, email: str) -> None:
        with self.engine.begin() as conn:
            if conn.execute(subscribers.delete().where(subscribers.c.email == email)).rowcount == 0:
                raise NotFound(f"no subscriber {email}; see `digest subscribers list`")

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
    def record_signup(
        self,
        email: str,
        prefs: Preferences,
        *,
        client: str,
        mailed: bool,
        now: datetime,
        expires_at: datetime,
    ) -> str:
        """Remember one accepted sign-up request; returns its confirmation token."""
        token = secrets.token_urlsafe(24)
        with self.engine.begin() as conn:
            conn.execute(
                signups.insert().values(
                    email=email,
                    token=token,
                    client=client,
                    mailed=mailed,
                    created_at=now,
                    expires_at=expires_at,
                    **prefs.values(),
                )
            )
        return token

    def mark_mailed(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(signups.update().where(signups.c.token == token).values(mailed=True))

    def signup(self, token: str) -> Signup | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(signups).where(signups.c.token == token)).first()
        if row is None:
            return None
        prefs = Preferences(_shows(row.shows), row.timezone, row.send_time)
        return Signup(
            row.id, row.email, row.token, prefs, row.created_at, row.expires_at, row.confirmed_at
        )

    def confirm(self, signup: Signup, now: datetime) -> Subscriber:
        """Use a sign-up's token once: the address becomes active with its preferences."""
        with self.engine.begin() as conn:
            used = conn.execute(
                signups.update()
                .where(signups.c.id == signup.id, signups.c.confirmed_at.is_(None))
                .values(confirmed_at=now)
            ).rowcount
            if used:
                self._upsert(
                    conn,
                    self._row(conn, signup.email),
                    signup.email,
                    signup.preferences,
                    "active",
                    now,
                )
        return self.get(signup.email)

    def mails_since(self, email: str, since: datetime) -> int:
        query = sa.select(sa.func.count()).where(
            signups.c.email == email, signups.c.mailed.is_(True), signups.c.created_at >= since
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def signups_since(self, client: str, since: datetime) -> int:
        query = sa.select(sa.func.count()).where(
            signups.c.client == client, signups.c.created_at >= since
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def forget_signups(self, before: datetime) -> None:
        """Sign-up records (addresses, client hashes) are kept only as long as needed, and
        an address never confirmed since `before` is forgotten with them."""
        with self.engine.begin() as conn:
            conn.execute(signups.delete().where(signups.c.created_at < before))
            recent = sa.select(signups.c.email).where(signups.c.email == subscribers.c.email)
            conn.execute(
                subscribers.delete().where(
                    subscribers.c.status == "pending",
                    subscribers.c.created_at < before,
                    ~sa.exists(recent),
                )
            )
