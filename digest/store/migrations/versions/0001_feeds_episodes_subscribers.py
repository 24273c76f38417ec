"""Feeds, episodes and subscribers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("last_polled_at", TS),
        sa.Column("last_success_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("added_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feeds"),
        sa.UniqueConstraint("url", name="uq_feeds_url"),
    )
    op.create_table(
        "episodes",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("feed_id", sa.Integer, nullable=False),
        sa.Column("item_key", sa.Text, nullable=False),
        sa.Column("guid", sa.Text, nullable=False, server_default=""),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("link", sa.Text, nullable=False, server_default=""),
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("published_at", TS),
        sa.Column("enclosure_url", sa.Text, nullable=False, server_default=""),
        sa.Column("enclosure_type", sa.Text, nullable=False, server_default=""),
        sa.Column("enclosure_length", sa.BigInteger),
        sa.Column("duration_seconds", sa.Float),
        sa.Column("episode_type", sa.Text, nullable=False, server_default="full"),
        sa.Column("transcript_url", sa.Text),
        sa.Column("transcript_type", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("discovered_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_episodes"),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name="fk_episodes_feed_id_feeds", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("feed_id", "item_key", name="uq_episodes_feed_id_item_key"),
    )
    op.create_index("ix_episodes_status", "episodes", ["status"])
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text),
        sa.Column("send_time", sa.String(5)),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("unsubscribe_token", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email", name="uq_subscribers_email"),
        sa.UniqueConstraint("unsubscribe_token", name="uq_subscribers_unsubscribe_token"),
    )


def downgrade() -> None:
    op.drop_table("subscribers")
    op.drop_index("ix_episodes_status", table_name="episodes")
    op.drop_table("episodes")
    op.drop_table("feeds")
