"""Each LLM call says which stage made it: `extraction` (one episode's windows) or
`editor` (the day's editor pass, no episode), so `digest status` reports both costs.
Calls recorded before were all extraction's.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "llm_calls",
        sa.Column("stage", sa.String(16), nullable=False, server_default="extraction"),
    )


def downgrade() -> None:
    with op.batch_alter_table("llm_calls") as batch:
        batch.drop_column("stage")
