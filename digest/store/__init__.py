"""The state store: SQLite by default (WAL), PostgreSQL by URL, schema grown by Alembic.

`Store` owns the engine; one repository per table family hangs off it, so callers
write `store.feeds.add(url)` and never see SQL.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine

from digest.core.errors import StoreError
from digest.core.statefiles import touch_private
from digest.store.claim_repo import Claim, ClaimRepo
from digest.store.digest_repo import Delivery, DigestRepo, FrozenDigest
from digest.store.editor_repo import EditorRepo
from digest.store.endpoint_repo import EndpointRepo
from digest.store.episode_repo import EpisodeRepo
from digest.store.feed_repo import FeedRepo
from digest.store.insight_repo import InsightRepo
from digest.store.subscriber_repo import SubscriberRepo
from digest.store.transcript_repo import StoredTranscript, TranscriptRepo

__all__ = [
    "Claim",
    "Delivery",
    "FrozenDigest",
    "Store",
    "StoredTranscript",
    "normalise_url",
    "redact",
]

MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the driver we ship), not psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (digest status, the UI) work while a run writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


RECONNECT_SECONDS = 30.0


class _PatientConnect:
    """Connect to a server database, trying again for up to 30 s while it restarts
    ("the database system is shutting down", refused), once a first connection has
    worked: a PostgreSQL restart under the workers then costs a pause, not failed
    episodes, while a wrong URL still fails at once. Stale pooled connections are
    already replaced on checkout (`pool_pre_ping`)."""

    def __init__(self) -> None:
        self.reached = False

    def __call__(
        self, dialect: Any, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
    ) -> Any:
        deadline = time.monotonic() + RECONNECT_SECONDS
        pause = 0.25
        while True:
            try:
                connection = dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError:
                if not self.reached or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 4.0)
                continue
            self.reached = True
            return connection


class Store:
    """One database, migrated to the newest schema on open."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = normalise_url(url)
        self.engine = self._engine(self.url)
        if migrate:
            self.migrate()
        self.feeds = FeedRepo(self.engine)
        self.episodes = EpisodeRepo(self.engine)
        self.subscribers = SubscriberRepo(self.engine)
        self.transcripts = TranscriptRepo(self.engine)
        self.insights = InsightRepo(self.engine)
        self.digests = DigestRepo(self.engine)
        self.editor = EditorRepo(self.engine)
        self.claims = ClaimRepo(self.engine)
        self.endpoints = EndpointRepo(self.engine)

    @staticmethod
    def _engine(url: str) -> Engine:
        try:
            if url.startswith("sqlite"):
                database = sa.engine.make_url(url).database
                if database and database != ":memory:":
                    touch_private(Path(database))  # addresses and tokens: 0600
                engine = sa.create_engine(url, connect_args={"timeout": 30})
                sa.event.listen(engine, "connect", _sqlite_pragmas)
                return engine
            engine = sa.create_engine(url, pool_pre_ping=True)
            sa.event.listen(engine, "do_connect", _PatientConnect())
            return engine
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot use database URL {redact(url)!r}: {exc}") from exc

    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is already there)."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except sa.exc.OperationalError as exc:
            raise StoreError(
                f"cannot open the state database {self.engine.url!r}: {exc.orig}; "
                "check [storage] database_url and that the server is running"
            ) from exc

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def summary(self) -> dict[str, Any]:
        """Counts for `digest status`: cheap aggregate queries only."""
        return {
            "feeds": self.feeds.health(),
            "episodes": self.episodes.count_by_status(),
            "subscribers": self.subscribers.count_by_status(),
        }
