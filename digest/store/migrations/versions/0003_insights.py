"""Extractions, insights and LLM call usage.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "extractions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("episode_id", sa.String(32), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("prompt_version", sa.String(32), nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("dropped", sa.Text, nullable=False, server_default="[]"),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_extractions"),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name="fk_extractions_episode_id_episodes",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "episode_id",
            "text_sha256",
            "prompt_version",
            "model",
            name="uq_extractions_episode_id_text_sha256_prompt_version_model",
        ),
    )
    op.create_table(
        "insights",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("extraction_id", sa.Integer, nullable=False),
        sa.Column("episode_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("quote", sa.Text, nullable=False),
        sa.Column("start_seconds", sa.Float),
        sa.Column("importance", sa.Integer, nullable=False),
        sa.Column("prompt_version", sa.String(32), nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("digest_date", sa.String(10)),
        sa.PrimaryKeyConstraint("id", name="pk_insights"),
        sa.ForeignKeyConstraint(
            ["extraction_id"],
            ["extractions.id"],
            name="fk_insights_extraction_id_extractions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name="fk_insights_episode_id_episodes",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_insights_digest_date", "insights", ["digest_date"])
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("episode_id", sa.String(32)),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("prompt_version", sa.String(32), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_llm_calls"),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["episodes.id"],
            name="fk_llm_calls_episode_id_episodes",
            ondelete="SET NULL",
        ),
    )


def downgrade() -> None:
    op.drop_table("llm_calls")
    op.drop_index("ix_insights_digest_date", table_name="insights")
    op.drop_table("insights")
    op.drop_table("extractions")
