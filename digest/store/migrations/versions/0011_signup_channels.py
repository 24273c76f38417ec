"""Readers choose their channels on the sign-up form too: a sign-up carries them until
it is confirmed, like its shows. NULL (every sign-up before, and forms that do not
offer channels) leaves a reader's channels as they are.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("signups", sa.Column("channels", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("signups") as batch:
        batch.drop_column("channels")
