"""Frozen digests (what a date's email holds) and the delivery ledger (who got it)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.store.schema import deliveries, digests, insights

_MARK_UPDATE = (
    deliveries.update()
    .where(
        deliveries.c.subscriber_id == sa.bindparam("sid"), deliveries.c.date == sa.bindparam("day")
    )
    .values(
        status=sa.bindparam("status"),
        message_id=sa.bindparam("message_id"),
        error=sa.bindparam("error"),
        updated_at=sa.bindparam("updated_at"),
        attempts=deliveries.c.attempts + sa.bindparam("attempt"),
    )
)
_MARK_INSERT = deliveries.insert().values(
    subscriber_id=sa.bindparam("sid"),
    date=sa.bindparam("day"),
    status=sa.bindparam("status"),
    message_id=sa.bindparam("message_id"),
    error=sa.bindparam("error"),
    updated_at=sa.bindparam("updated_at"),
    attempts=sa.bindparam("attempt"),
)


@dataclass(frozen=True)
class FrozenDigest:
    date: str
    subject: str
    insight_ids: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    subscriber_id: int
    date: str
    status: str
    message_id: str
    error: str | None
    attempts: int


def _delivery(row: Any) -> Delivery:
    return Delivery(
        row.subscriber_id, row.date, row.status, row.message_id, row.error, row.attempts
    )


class DigestRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, date: str) -> FrozenDigest | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(digests).where(digests.c.date == date)).first()
        if row is None:
            return None
        return FrozenDigest(
            row.date, row.subject, tuple(json.loads(row.insight_ids)), row.created_at
        )

    def freeze(
        self, date: str, subject: str, insight_ids: Sequence[str], now: datetime
    ) -> FrozenDigest:
        """Store the date's digest and mark its insights used, in one transaction; first wins."""
        with self.engine.begin() as conn:
            if (
                conn.execute(sa.select(digests.c.date).where(digests.c.date == date)).first()
                is None
            ):
                conn.execute(
                    digests.insert().values(
                        date=date,
                        subject=subject,
                        insight_ids=json.dumps(list(insight_ids)),
                        created_at=now,
                    )
                )
                conn.execute(
                    insights.update().where(insights.c.id.in_(insight_ids)).values(digest_date=date)
                )
        frozen = self.get(date)
        assert frozen is not None
        return frozen

    def dates(self) -> builtins.list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(sa.select(digests.c.date).order_by(digests.c.date.desc())).scalars()
            )

    def deliveries(self, date: str) -> builtins.list[Delivery]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(deliveries).where(deliveries.c.date == date))
            return [_delivery(r) for r in rows]

    def mark(
        self,
        subscriber_id: int,
        date: str,
        status: str,
        message_id: str,
        now: datetime,
        error: str | None = None,
    ) -> None:
        """Upsert the ledger row; every hand-over to a server counts as an attempt."""
        row = {
            "sid": subscriber_id,
            "day": date,
            "status": status,
            "message_id": message_id,
            "error": error,
            "updated_at": now,
            "attempt": int(status == "sending"),
        }
        with self.engine.begin() as conn:  # prepared statements: sending 10,000 is two each
            if not conn.execute(_MARK_UPDATE, row).rowcount:
                conn.execute(_MARK_INSERT, row)
