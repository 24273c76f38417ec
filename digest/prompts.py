"""Prompt templates: editor-owned Jinja2 files rendered into chat messages.

A template defines two blocks, `system` and `user`. Its version (stored on every
insight) hashes the template source with the model and the answer schema, so
changing any of them re-extracts what it affects and nothing else.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, TemplateError

from digest.errors import ConfigError

SCHEMA_VERSION = "insights-v1"
FENCE = re.compile(r"</?\s*transcript\s*>", re.IGNORECASE)


def templates_root() -> Path:
    """`templates/` beside the package (a checkout) or inside it (an installed wheel)."""
    package = Path(__file__).parent
    for candidate in (package / "_templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the templates folder is missing from this installation")


def timestamp(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass(frozen=True)
class Prompt:
    name: str
    path: Path
    source: str

    def version(self, model: str) -> str:
        """Identity of what the model is asked: template text + model + answer schema."""
        material = f"{self.source}\0{model}\0{SCHEMA_VERSION}".encode()
        return hashlib.sha256(material).hexdigest()[:12]

    def render(self, **context: Any) -> list[dict[str, str]]:
        """System and user messages; the transcript is fenced and its fences neutralised."""
        env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
        env.filters["timestamp"] = timestamp
        try:
            template = env.from_string(self.source)
            ctx = template.new_context(context)
            blocks = {name: "".join(block(ctx)).strip() for name, block in template.blocks.items()}
        except TemplateError as exc:
            raise ConfigError(f"{self.path}: prompt template error: {exc}") from exc
        missing = {"system", "user"} - set(blocks)
        if missing:
            raise ConfigError(f"{self.path}: the template needs a {{% block {min(missing)} %}}")
        return [
            {"role": "system", "content": blocks["system"]},
            {"role": "user", "content": blocks["user"]},
        ]


def defang(text: str) -> str:
    """Transcript text cannot close the fence it sits in."""
    return FENCE.sub("[transcript]", text)


def load_prompt(name: str, prompts_dir: str = "") -> Prompt:
    folder = Path(prompts_dir) if prompts_dir else templates_root() / "prompts"
    path = Path(name) if name.endswith(".j2") else folder / f"{name}.j2"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.j2")) if folder.is_dir() else []
        raise ConfigError(
            f"no prompt {name!r} ({path}); known prompts: {', '.join(known) or 'none'}"
        )
    return Prompt(name=path.stem, path=path, source=path.read_text(encoding="utf-8"))
