"""Self-serve subscribers: sign-ups awaiting confirmation, each subscriber's shows, and
one frozen digest per (date, show selection) instead of one per date.

An insight used to be marked with the date of the one digest that sent it
(`insights.digest_date`); with per-subscriber selections an insight sent to readers
of one show is still new to readers of all shows, so "already sent" is now read per
selection from the frozen digests themselves and the column goes.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("shows", sa.Text))
    op.create_table(
        "signups",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("shows", sa.Text),
        sa.Column("timezone", sa.Text),
        sa.Column("send_time", sa.String(5)),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("mailed", sa.Boolean, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("confirmed_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_signups"),
        sa.UniqueConstraint("token", name="uq_signups_token"),
    )
    op.create_index("ix_signups_email", "signups", ["email"])
    op.create_index("ix_signups_client", "signups", ["client"])
    with op.batch_alter_table("digests", recreate="always") as batch:
        batch.add_column(
            sa.Column("selection", sa.String(200), nullable=False, server_default="all")
        )
        batch.drop_constraint("pk_digests", type_="primary")
        batch.create_primary_key("pk_digests", ["date", "selection"])
    with op.batch_alter_table("insights") as batch:
        batch.drop_index("ix_insights_digest_date")
        batch.drop_column("digest_date")


def downgrade() -> None:
    with op.batch_alter_table("insights") as batch:
        batch.add_column(sa.Column("digest_date", sa.String(10)))
        batch.create_index("ix_insights_digest_date", ["digest_date"])
    op.execute("DELETE FROM digests WHERE selection <> 'all'")
    with op.batch_alter_table("digests", recreate="always") as batch:
        batch.drop_constraint("pk_digests", type_="primary")
        batch.drop_column("selection")
        batch.create_primary_key("pk_digests", ["date"])
    op.drop_table("signups")
    op.drop_column("subscribers", "shows")
