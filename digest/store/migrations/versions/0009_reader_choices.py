"""Readers choose more than shows: topics (words and phrases followed across shows,
and whether a day with nothing on them sends nothing) and a cadence (daily, or
weekly on a weekday). Sign-ups carry them until confirmed, like shows. Every reader
stored before keeps what they had: no topics, daily.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("subscribers", "signups"):
        op.add_column(table, sa.Column("topics", sa.Text, nullable=False, server_default=""))
        op.add_column(
            table,
            sa.Column("topics_only", sa.Boolean, nullable=False, server_default=sa.false()),
        )
        op.add_column(
            table, sa.Column("cadence", sa.String(8), nullable=False, server_default="daily")
        )
        op.add_column(table, sa.Column("weekday", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    for table in ("signups", "subscribers"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("weekday")
            batch.drop_column("cadence")
            batch.drop_column("topics_only")
            batch.drop_column("topics")
