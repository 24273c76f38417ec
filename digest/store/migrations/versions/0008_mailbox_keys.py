"""One subscriber per mailbox, and rate limits per inbox.

Addresses were unique as typed, so `Victim@example.org` and `victim@example.org`
were two subscribers with two allowances of confirmation emails. `mailbox` is the
address case-folded with its domain in ASCII form (unique per subscriber); sign-ups
also record `inbox`, the mailbox without a `+tag` (and without dots at Gmail), which
the per-address limit counts.

Rows that already spell one mailbox twice keep their data; the later ones get no
`mailbox` (NULL is not unique-checked) and are still found by their exact address.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _keys(address: str) -> tuple[str, str]:
    from digest.core.addresses import inbox_key, mailbox_key
    from digest.core.errors import InvalidInput

    try:
        return mailbox_key(address), inbox_key(address)
    except InvalidInput:  # stored before today's rules: keep it apart, as it was
        return address.casefold(), address.casefold()


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("mailbox", sa.Text))
    op.add_column("signups", sa.Column("mailbox", sa.Text))
    op.add_column("signups", sa.Column("inbox", sa.Text))
    conn = op.get_bind()
    taken: set[str] = set()
    for row in conn.execute(sa.text("SELECT id, email FROM subscribers ORDER BY id")):
        mailbox, _ = _keys(row.email)
        value = None if mailbox in taken else mailbox
        taken.add(mailbox)
        conn.execute(
            sa.text("UPDATE subscribers SET mailbox = :m WHERE id = :i"), {"m": value, "i": row.id}
        )
    for row in conn.execute(sa.text("SELECT id, email FROM signups")).fetchall():
        mailbox, inbox = _keys(row.email)
        conn.execute(
            sa.text("UPDATE signups SET mailbox = :m, inbox = :b WHERE id = :i"),
            {"m": mailbox, "b": inbox, "i": row.id},
        )
    with op.batch_alter_table("subscribers") as batch:
        batch.create_unique_constraint("uq_subscribers_mailbox", ["mailbox"])
    with op.batch_alter_table("signups") as batch:
        batch.alter_column("mailbox", existing_type=sa.Text, nullable=False)
        batch.alter_column("inbox", existing_type=sa.Text, nullable=False)
        batch.create_index("ix_signups_mailbox", ["mailbox"])
        batch.create_index("ix_signups_inbox", ["inbox"])


def downgrade() -> None:
    with op.batch_alter_table("signups") as batch:
        batch.drop_index("ix_signups_inbox")
        batch.drop_index("ix_signups_mailbox")
        batch.drop_column("inbox")
        batch.drop_column("mailbox")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_constraint("uq_subscribers_mailbox", type_="unique")
        batch.drop_column("mailbox")
