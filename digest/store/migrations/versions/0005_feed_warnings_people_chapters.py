"""Feed warnings, podcast:person and podcast:chapters on episodes, chapters on insights.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("warnings", sa.Text, nullable=False, server_default="[]"))
    op.add_column("episodes", sa.Column("people", sa.Text, nullable=False, server_default="[]"))
    op.add_column("episodes", sa.Column("chapters_url", sa.Text, nullable=False, server_default=""))
    op.add_column("insights", sa.Column("chapter", sa.Text))


def downgrade() -> None:
    op.drop_column("insights", "chapter")
    op.drop_column("episodes", "chapters_url")
    op.drop_column("episodes", "people")
    op.drop_column("feeds", "warnings")
