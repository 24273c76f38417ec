"""The state store on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from digest.core.errors import InvalidInput, NotFound, StoreError
from digest.feeds.parse import episode_id, parse_feed
from digest.store import Store, normalise_url
from digest.store.schema import metadata
from tests.conftest import fixture_bytes

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_migrations_build_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrating_again_is_a_no_op(db_url: str) -> None:
    with Store(db_url) as first:
        first.feeds.add("https://a.example/feed", NOW)
    with Store(db_url) as second:
        assert [f.url for f in second.feeds.list()] == ["https://a.example/feed"]


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    with Store(f"sqlite:///{tmp_path}/x.db") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_plain_postgresql_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="database_url"):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_feed_lifecycle_and_health(store: Store) -> None:
    feed = store.feeds.add("https://a.example/feed", NOW)
    with pytest.raises(InvalidInput, match="already added"):
        store.feeds.add("https://a.example/feed", NOW)
    store.feeds.record_failure(feed.id, NOW, "HTTP 500")
    store.feeds.record_failure(feed.id, NOW + timedelta(minutes=30), "HTTP 502")
    failing = store.feeds.get(feed.url)
    assert (failing.consecutive_failures, failing.last_error) == (2, "HTTP 502")
    assert failing.last_success_at is None
    assert store.feeds.health() == {"total": 1, "failing": 1}
    store.feeds.record_success(feed.id, NOW, title="A", etag='"e"', modified=None)
    healed = store.feeds.get(feed.url)
    assert (healed.consecutive_failures, healed.last_error, healed.etag, healed.title) == (
        0,
        None,
        '"e"',
        "A",
    )
    store.feeds.remove(feed.url)
    with pytest.raises(NotFound, match="digest feeds list"):
        store.feeds.get(feed.url)


def test_timestamps_come_back_as_aware_utc(store: Store) -> None:
    berlin = timezone(timedelta(hours=1))
    feed = store.feeds.add("https://a.example/feed", datetime(2026, 11, 20, 13, 0, tzinfo=berlin))
    assert feed.added_at == NOW
    assert feed.added_at.tzinfo is not None


def test_episode_upsert_is_idempotent_and_removal_cascades(store: Store) -> None:
    feed = store.feeds.add("https://gridtalk.example/feed.xml", NOW)
    items = parse_feed(fixture_bytes("feeds/rss_itunes.xml"), feed.url).episodes
    ids = [episode_id(feed.url, i.key) for i in items]
    pending, skipped = store.episodes.upsert(feed, ids, items, NOW, lambda i: ("pending", None))
    assert (len(pending), len(skipped)) == (4, 0)
    store.episodes.set_status(ids[0], "failed", NOW, "boom")
    again = store.episodes.upsert(feed, ids, items, NOW, lambda i: ("pending", None))
    assert again == ([], [])
    assert store.episodes.get(ids[0]).status == "failed", "a re-poll never resets progress"
    assert store.episodes.count_by_status() == {"pending": 3, "failed": 1}
    store.feeds.remove(feed.url)
    assert store.episodes.list() == []


def test_subscribers_get_unique_secret_tokens_and_can_come_back(store: Store) -> None:
    alice = store.subscribers.add("alice@example.org", NOW, timezone="Asia/Tokyo")
    bob = store.subscribers.add("bob@example.org", NOW, send_time="06:30")
    assert alice.unsubscribe_token != bob.unsubscribe_token
    assert len(alice.unsubscribe_token) >= 32
    with pytest.raises(InvalidInput, match="already subscribed"):
        store.subscribers.add("alice@example.org", NOW)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE subscribers SET status = 'unsubscribed' WHERE email = 'alice@example.org'"
            )
        )
    back = store.subscribers.add("alice@example.org", NOW)
    assert back.status == "active"
    assert back.unsubscribe_token == alice.unsubscribe_token
    assert store.subscribers.count_by_status() == {"active": 2}
    store.subscribers.remove("bob@example.org")
    assert [s.email for s in store.subscribers.list()] == ["alice@example.org"]
    with pytest.raises(NotFound):
        store.subscribers.remove("bob@example.org")


def test_digests_frozen_before_editions_become_the_all_shows_edition(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from digest.store import MIGRATIONS

    with Store(db_url, migrate=False) as old:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with old.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "0006")
        with old.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO digests (date, subject, insight_ids, created_at) "
                    "VALUES ('2026-11-19', 'Old', '[\"a\", \"b\"]', :now)"
                ),
                {"now": NOW.replace(tzinfo=None)},
            )
    with Store(db_url) as store:
        frozen = store.digests.get("2026-11-19")
        assert frozen is not None and (frozen.selection, frozen.insight_ids) == ("all", ("a", "b"))
        assert store.digests.dates() == ["2026-11-19"]
        assert store.digests.used("all", NOW - timedelta(days=1), before="2026-11-20") == {"a", "b"}
        store.digests.freeze("2026-11-19", "Mine", ["c"], NOW, selection="3")
        assert store.digests.get("2026-11-19", "3") is not None, "a second edition, same date"
