"""Transactions that count, then write, with no other such transaction in between.

"At most N sign-ups an hour" is a count followed by an insert. Two requests that
arrive together both count N-1 and both insert, unless the two transactions run
one after the other. SQLite serialises writers when a transaction takes the write
lock up front (`BEGIN IMMEDIATE`); PostgreSQL does it for transactions that take
the same advisory lock, which it releases at commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine


def _lock_id(name: str) -> int:
    """A stable signed 64-bit id for a lock name (PostgreSQL's advisory lock key)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[Connection]:
    """A transaction that runs alone among those holding `name`; committed on success."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, before the first read
        else:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _lock_id(name)})
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
