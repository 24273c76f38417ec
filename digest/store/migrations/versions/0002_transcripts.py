"""Transcripts, and a retry counter on episodes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("episodes") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "transcripts",
        sa.Column("episode_id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("engine", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("options_key", sa.String(32)),
        sa.Column("audio_sha256", sa.String(64)),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("language", sa.Text, nullable=False, server_default=""),
        sa.Column("timed", sa.Boolean, nullable=False),
        sa.Column("duration_seconds", sa.Float, nullable=False),
        sa.Column("segments", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("episode_id", name="pk_transcripts"),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name="fk_transcripts_episode_id_episodes",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_transcripts_audio_sha256_options_key", "transcripts", ["audio_sha256", "options_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_transcripts_audio_sha256_options_key", table_name="transcripts")
    op.drop_table("transcripts")
    with op.batch_alter_table("episodes") as batch:
        batch.drop_column("attempts")
