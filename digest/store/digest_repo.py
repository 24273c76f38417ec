"""Frozen digests (what a date's email holds, one edition per show selection) and the
delivery ledger (who got it)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.core.models import ALL_SHOWS
from digest.store.schema import deliveries, digests

_MARK_UPDATE = (
    deliveries.update()
    .where(
        deliveries.c.subscriber_id == sa.bindparam("sid"),
        deliveries.c.date == sa.bindparam("day"),
        deliveries.c.channel == sa.bindparam("via"),
    )
    .values(
        status=sa.bindparam("status"),
        message_id=sa.bindparam("message_id"),
        edition=sa.bindparam("ed"),
        error=sa.bindparam("error"),
        updated_at=sa.bindparam("updated_at"),
        attempts=deliveries.c.attempts + sa.bindparam("attempt"),
    )
)
_MARK_INSERT = deliveries.insert().values(
    subscriber_id=sa.bindparam("sid"),
    date=sa.bindparam("day"),
    channel=sa.bindparam("via"),
    edition=sa.bindparam("ed"),
    status=sa.bindparam("status"),
    message_id=sa.bindparam("message_id"),
    error=sa.bindparam("error"),
    updated_at=sa.bindparam("updated_at"),
    attempts=sa.bindparam("attempt"),
)


@dataclass(frozen=True)
class FrozenDigest:
    date: str
    selection: str
    subject: str
    insight_ids: tuple[str, ...]
    created_at: datetime
    header: str = ""  # the editor pass's header line; "": the standard one


@dataclass(frozen=True)
class Delivery:
    subscriber_id: int
    date: str
    status: str
    message_id: str
    error: str | None
    attempts: int
    channel: str = "email"  # or "<kind>:<endpoint id>"


def _frozen(row: Any) -> FrozenDigest:
    return FrozenDigest(
        row.date,
        row.selection,
        row.subject,
        tuple(json.loads(row.insight_ids)),
        row.created_at,
        row.header,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        row.subscriber_id,
        row.date,
        row.status,
        row.message_id,
        row.error,
        row.attempts,
        row.channel,
    )


class DigestRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, date: str, selection: str = ALL_SHOWS) -> FrozenDigest | None:
        query = sa.select(digests).where(digests.c.date == date, digests.c.selection == selection)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _frozen(row) if row else None

    def freeze(
        self,
        date: str,
        subject: str,
        insight_ids: Sequence[str],
        now: datetime,
        selection: str = ALL_SHOWS,
        header: str = "",
    ) -> FrozenDigest:
        """Store the edition's insights; the first to freeze a (date, selection) wins."""
        with self.engine.begin() as conn:
            exists = sa.select(digests.c.date).where(
                digests.c.date == date, digests.c.selection == selection
            )
            if conn.execute(exists).first() is None:
                conn.execute(
                    digests.insert().values(
                        date=date,
                        selection=selection,
                        subject=subject,
                        insight_ids=json.dumps(list(insight_ids)),
                        created_at=now,
                        header=header,
                    )
                )
        frozen = self.get(date, selection)
        assert frozen is not None
        return frozen

    def used(self, selection: str, since: datetime, *, before: str) -> set[str]:
        """Insights this selection's readers already got in editions frozen since
        `since` for dates before `before`: never selected for them again."""
        query = sa.select(digests.c.insight_ids).where(
            digests.c.selection == selection,
            digests.c.created_at >= since,
            digests.c.date < before,
        )
        with self.engine.connect() as conn:
            return {i for ids in conn.execute(query).scalars() for i in json.loads(ids)}

    def dates(self) -> builtins.list[str]:
        """Dates of the all-shows edition, newest first: the public archive."""
        query = (
            sa.select(digests.c.date)
            .where(digests.c.selection == ALL_SHOWS)
            .order_by(digests.c.date.desc())
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def editions(self, limit: int) -> builtins.list[FrozenDigest]:
        """The newest all-shows editions, newest first (the archive's feed)."""
        query = (
            sa.select(digests)
            .where(digests.c.selection == ALL_SHOWS)
            .order_by(digests.c.date.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_frozen(r) for r in conn.execute(query)]

    def deliveries(self, date: str) -> builtins.list[Delivery]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(deliveries).where(deliveries.c.date == date))
            return [_delivery(r) for r in rows]

    def published(self, channel: str, limit: int = 50) -> builtins.list[tuple[str, str]]:
        """(date, edition key) of the copies `channel` took, newest first."""
        query = (
            sa.select(deliveries.c.date, deliveries.c.edition)
            .where(deliveries.c.channel == channel, deliveries.c.status == "sent")
            .order_by(deliveries.c.date.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row.date, row.edition) for row in conn.execute(query)]

    def count_by_channel(self, since: datetime) -> dict[str, dict[str, int]]:
        """Ledger rows updated since then, by channel kind ("email", "webhook") and status."""
        query = (
            sa.select(deliveries.c.channel, deliveries.c.status, sa.func.count())
            .where(deliveries.c.updated_at >= since)
            .group_by(deliveries.c.channel, deliveries.c.status)
        )
        counts: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for channel, status, n in conn.execute(query):
                per = counts.setdefault(channel.split(":", 1)[0], {})
                per[status] = per.get(status, 0) + int(n)
        return counts

    def mark(
        self,
        subscriber_id: int,
        date: str,
        status: str,
        message_id: str,
        now: datetime,
        error: str | None = None,
        channel: str = "email",
        edition: str = "",
    ) -> None:
        """Upsert the ledger row; every hand-over to a server counts as an attempt."""
        row = {
            "sid": subscriber_id,
            "day": date,
            "via": channel,
            "ed": edition,
            "status": status,
            "message_id": message_id,
            "error": error,
            "updated_at": now,
            "attempt": int(status == "sending"),
        }
        with self.engine.begin() as conn:  # prepared statements: sending 10,000 is two each
            if not conn.execute(_MARK_UPDATE, row).rowcount:
                conn.execute(_MARK_INSERT, row)
