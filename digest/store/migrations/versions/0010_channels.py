"""Channels: a reader's editions may go to webhooks or a private feed as well as (or
instead of) their inbox, and the ledger keeps one row per reader, date and channel,
so a crash half-way re-sends nothing a channel already took, with the edition each
copy carried. Every existing row is an email delivery.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(
            sa.Column("channel", sa.String(40), nullable=False, server_default="email")
        )
        batch.add_column(sa.Column("edition", sa.String(200), nullable=False, server_default=""))
        batch.drop_constraint("uq_deliveries_subscriber_id_date", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_subscriber_id_date_channel", ["subscriber_id", "date", "channel"]
        )
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.Text, nullable=False, server_default=""),
        sa.Column("format", sa.String(16), nullable=False, server_default=""),
        sa.Column("secret", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disabled_at", TS),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_endpoints"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_endpoints_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_endpoints_subscriber_id", "endpoints", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_endpoints_subscriber_id", "endpoints")
    op.drop_table("endpoints")
    op.execute("DELETE FROM deliveries WHERE channel <> 'email'")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_subscriber_id_date_channel", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_subscriber_id_date", ["subscriber_id", "date"]
        )
        batch.drop_column("edition")
        batch.drop_column("channel")
