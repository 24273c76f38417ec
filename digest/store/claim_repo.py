"""Claims: one owner at a time for a piece of work, for as long as its lease runs.

Several workers on several machines share nothing but this database, so the claim is
a row: taking it is one conditional UPDATE (or the INSERT of a new row, which the
primary key lets only one writer win), and both SQLite and PostgreSQL make that
atomic. A holder that dies stops renewing; its lease runs out and the next taker
wins. A holder on this machine whose process is gone is known dead at once.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from digest.store.schema import claims


@dataclass(frozen=True)
class Claim:
    name: str
    owner: str
    claimed_at: datetime
    expires_at: datetime


def _claim(row: Any) -> Claim:
    return Claim(row.name, row.owner, row.claimed_at, row.expires_at)


class ClaimRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def take(
        self,
        name: str,
        owner: str,
        now: datetime,
        until: datetime,
        *,
        dead: Callable[[str], bool] = lambda owner: False,
    ) -> Claim | None:
        """Take `name` for `owner` until `until`; None if taken, else the holder's claim.

        Free means: no row, a lease that ran out, the same owner, or an owner that
        `dead` knows to be gone (a process on this machine that no longer exists)."""
        values = {"owner": owner, "claimed_at": now, "expires_at": until}
        with self.engine.begin() as conn:
            taken = conn.execute(
                claims.update()
                .where(claims.c.name == name)
                .where(sa.or_(claims.c.expires_at <= now, claims.c.owner == owner))
                .values(**values)
            ).rowcount
        if taken:
            return None
        try:
            with self.engine.begin() as conn:
                conn.execute(claims.insert().values(name=name, **values))
            return None
        except sa.exc.IntegrityError:
            pass
        holder = self.get(name)
        if holder is None:  # released between the two statements: try once more
            return self.take(name, owner, now, until, dead=lambda _: False)
        if dead(holder.owner):
            with self.engine.begin() as conn:
                taken = conn.execute(
                    claims.update()
                    .where(claims.c.name == name, claims.c.owner == holder.owner)
                    .values(**values)
                ).rowcount
            if taken:
                return None
        return holder

    def renew(self, name: str, owner: str, until: datetime) -> bool:
        """Extend the lease; False when the claim was lost (it ran out and was taken)."""
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    claims.update()
                    .where(claims.c.name == name, claims.c.owner == owner)
                    .values(expires_at=until)
                ).rowcount
            )

    def release(self, name: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(claims.delete().where(claims.c.name == name, claims.c.owner == owner))

    def get(self, name: str) -> Claim | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(claims).where(claims.c.name == name)).first()
        return _claim(row) if row else None

    def held(self, prefix: str, now: datetime) -> builtins.list[Claim]:
        """Live claims whose name starts with `prefix` (what is being worked on now)."""
        query = sa.select(claims).where(claims.c.name.startswith(prefix), claims.c.expires_at > now)
        with self.engine.connect() as conn:
            return [_claim(r) for r in conn.execute(query)]
