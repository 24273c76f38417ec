"""Subscriber rows: address, timezone, send time, and the secret unsubscribe token."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.errors import InvalidInput, NotFound
from digest.models import Subscriber
from digest.store.schema import subscribers


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        timezone=row.timezone,
        send_time=row.send_time,
        status=row.status,
        unsubscribe_token=row.unsubscribe_token,
        created_at=row.created_at,
    )


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
    ) -> Subscriber:
        """Add an address (already validated); re-adding an unsubscribed one reactivates it."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(subscribers).where(subscribers.c.email == email)).first()
            if row is not None and row.status == "active":
                raise InvalidInput(f"{email} is already subscribed")
            values = {"timezone": timezone, "send_time": send_time, "status": "active"}
            if row is not None:
                conn.execute(
                    subscribers.update().where(subscribers.c.id == row.id).values(**values)
                )
            else:
                # 192 bits from the OS CSPRNG: unguessable, and unique per subscriber.
                token = secrets.token_urlsafe(24)
                conn.execute(
                    subscribers.insert().values(
                        email=email, unsubscribe_token=token, created_at=now, **values
                    )
                )
        return self.get(email)

    def get(self, email: str) -> Subscriber:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(subscribers).where(subscribers.c.email == email)).first()
        if row is None:
            raise NotFound(f"no subscriber {email}; see `digest subscribers list`")
        return _subscriber(row)

    def list(self, *, status: str | None = None) -> list[Subscriber]:
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

    def count_by_status(self) -> dict[str, int]:
        query = sa.select(subscribers.c.status, sa.func.count()).group_by(subscribers.c.status)
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(query)}
