"""Readers' channels (email, webhooks, ...). A reader without rows gets email only, so
every reader stored before channels existed reads as before; their first added
endpoint writes the email row too, so removing email is a choice they make."""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.core.errors import InvalidInput, NotFound
from digest.core.models import Endpoint
from digest.store.schema import endpoints

# A feed's secret is a link token (in its URL, the shape of every token we issue); a
# webhook's is an HMAC key.
SECRETS = {"feed": lambda n: "f" + secrets.token_urlsafe(n)[:42]}


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        row.id,
        row.subscriber_id,
        row.kind,
        row.target,
        row.format,
        row.secret,
        row.error if row.disabled_at is not None else None,
    )


class EndpointRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self, subscriber_id: int, kind: str, now: datetime, *, target: str = "", format: str = ""
    ) -> Endpoint:
        """A new channel for the reader, with a fresh signing secret."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(endpoints).where(endpoints.c.subscriber_id == subscriber_id)
            ).all()
            if any(r.kind == kind and r.target == target for r in rows):
                raise InvalidInput(f"the reader already has this {kind} channel")
            if not rows and kind != "email":  # the email they had until now stays theirs
                email = {"subscriber_id": subscriber_id, "kind": "email", "created_at": now}
                conn.execute(endpoints.insert().values(**email))
            new_id = conn.execute(
                endpoints.insert().values(
                    subscriber_id=subscriber_id,
                    kind=kind,
                    target=target,
                    format=format,
                    secret=SECRETS.get(kind, secrets.token_hex)(32) if kind != "email" else "",
                    created_at=now,
                )
            ).inserted_primary_key
        assert new_id is not None
        return self.get(int(new_id[0]))

    def get(self, endpoint_id: int) -> Endpoint:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(endpoints).where(endpoints.c.id == endpoint_id)).first()
        if row is None:
            raise NotFound(f"no channel {endpoint_id}")
        return _endpoint(row)

    def by_secret(self, kind: str, secret: str) -> Endpoint | None:
        """The live endpoint a link token names (a reader's private feed)."""
        query = sa.select(endpoints).where(
            endpoints.c.kind == kind,
            endpoints.c.secret == secret,
            endpoints.c.disabled_at.is_(None),
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _endpoint(row)

    def of(self, subscriber_ids: Iterable[int]) -> dict[int, builtins.list[Endpoint]]:
        """Each reader's channels (an implicit email for readers without rows)."""
        ids = list(subscriber_ids)
        found: dict[int, builtins.list[Endpoint]] = {i: [] for i in ids}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):  # bound the IN list
                batch = ids[start : start + 500]
                query = sa.select(endpoints).where(endpoints.c.subscriber_id.in_(batch))
                for row in conn.execute(query.order_by(endpoints.c.id)):
                    found[row.subscriber_id].append(_endpoint(row))
        return {i: eps or [Endpoint(0, i, "email")] for i, eps in found.items()}

    def remove(self, subscriber_id: int, endpoint: Endpoint) -> None:
        """Remove one channel; a reader keeps at least one (pause or unsubscribe instead)."""
        current = self.of([subscriber_id])[subscriber_id]
        if len([e for e in current if e.disabled is None]) <= 1 and endpoint.disabled is None:
            raise InvalidInput("a reader keeps at least one channel: pause or unsubscribe instead")
        with self.engine.begin() as conn:
            conn.execute(endpoints.delete().where(endpoints.c.id == endpoint.id))

    def disable(self, endpoint_id: int, error: str, now: datetime) -> None:
        """Refused for good: nothing more goes there until the reader adds it again."""
        with self.engine.begin() as conn:
            conn.execute(
                endpoints.update()
                .where(endpoints.c.id == endpoint_id)
                .values(disabled_at=now, error=error)
            )
