"""The day's editor-pass answers, cached by what they depend on (digest.jobs.editing)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from digest.store.schema import editor_answers


class EditorRepo:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(editor_answers.c.answer).where(editor_answers.c.key == key)
            ).first()
        return None if row is None else str(row.answer)

    def save(self, key: str, version: str, answer: str, now: datetime) -> None:
        """Keep the first answer for a key: two workers asking at once agree on one."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    editor_answers.insert().values(
                        key=key, version=version, answer=answer, created_at=now
                    )
                )
        except IntegrityError:
            pass
