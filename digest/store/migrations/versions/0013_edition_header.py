"""An edition keeps the header line the day's editor pass wrote for it, frozen with its
insights, so every copy and every re-send opens with the same line. Editions frozen
before, or without an editor pass, have none and open with the standard line.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("digests", sa.Column("header", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("digests") as batch:
        batch.drop_column("header")
