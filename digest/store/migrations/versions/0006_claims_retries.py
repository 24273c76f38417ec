"""Claims with leases (several workers, one owner per episode or send), and when a
failed episode is tried again.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("claimed_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.add_column("episodes", sa.Column("retry_at", TS))
    op.add_column("episodes", sa.Column("runs", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("episodes", "runs")
    op.drop_column("episodes", "retry_at")
    op.drop_table("claims")
