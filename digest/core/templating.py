"""Where the shipped templates live, and the filters every template shares."""

from __future__ import annotations

from pathlib import Path

from digest.core.errors import ConfigError


def templates_root() -> Path:
    """`templates/` beside the package (a checkout) or inside it (an installed wheel)."""
    package = Path(__file__).parent.parent  # the `digest` package
    for candidate in (package / "_templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the templates folder is missing from this installation")


def timestamp(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
