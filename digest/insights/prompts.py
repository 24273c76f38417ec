"""Prompt templates: editor-owned Jinja2 files rendered into chat messages.

A prompt file starts with front matter (TOML inside a Jinja comment, so the file
stays a plain template) and defines two blocks, `system` and `user`:

    {#---
    name = "insights"
    description = "What the prompt is for"
    model = "gpt-4o-mini"      # optional: overrides [extraction] model
    temperature = 0.2          # optional
    max_insights = 6           # optional: per transcript window
    ---#}

It is validated on load, with errors that point at the file and line. Its version
(stored on every insight) hashes the source with the model and the answer schema,
so changing any of them re-extracts what it affects and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, TemplateError, TemplateSyntaxError, nodes

from digest.core.errors import ConfigError
from digest.core.templating import templates_root, timestamp

# The answer every prompt asks for (Prompt.answer_schema): changing it changes every
# prompt's version, so it re-extracts what it affects.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["insights"],
    "properties": {
        "insights": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["text", "quote", "start", "importance"],
                "properties": {
                    "text": {"type": "string"},
                    "quote": {"type": "string"},
                    "start": {"type": ["number", "null"]},
                    "importance": {"type": "integer", "minimum": 1, "maximum": 10},
                },
            },
        }
    },
}


def bounded_schema(
    schema: Mapping[str, Any], max_items: int, max_chars: int | None = None
) -> dict[str, Any]:
    """The answer schema with at most `max_items` insights and, with `max_chars`, strings
    no longer than that. Servers that turn the schema into a grammar (llama.cpp, vLLM,
    Ollama) then cannot loop on a list or a string until the token limit, which small
    models do. OpenAI's strict mode takes `maxItems`; a server that refuses a keyword is
    asked again without `response_format`."""
    bounded = json.loads(json.dumps(schema))
    insights = bounded["properties"]["insights"]
    insights["maxItems"] = max_items
    if max_chars:
        for name in ("text", "quote"):
            insights["items"]["properties"][name]["maxLength"] = max_chars
    return dict(bounded)


FENCE = re.compile(r"</?\s*transcript\s*>", re.IGNORECASE)


FRONT_OPEN, FRONT_CLOSE = "{#---\n", "\n---#}"
META_KEYS = {
    "name": str,
    "description": str,
    "model": str,
    "temperature": float,
    "max_insights": int,
}


@dataclass(frozen=True)
class PromptMeta:
    name: str
    description: str
    model: str | None = None  # None: [extraction] model
    temperature: float | None = None
    max_insights: int | None = None


@dataclass(frozen=True)
class Prompt:
    name: str
    path: Path
    source: str
    meta: PromptMeta = PromptMeta("", "")
    # What the model must answer: sent as the strict `json_schema` response format and
    # hashed into `version`, so the version always names the schema actually sent.
    answer_schema: Mapping[str, Any] = field(default_factory=lambda: ANSWER_SCHEMA)

    def version(self, model: str) -> str:
        """Identity of what the model is asked: template text + model + answer schema."""
        schema = json.dumps(self.answer_schema, sort_keys=True)
        material = f"{self.source}\0{model}\0{schema}".encode()
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


def _front_matter(source: str, path: Path) -> PromptMeta:
    if not source.startswith(FRONT_OPEN) or FRONT_CLOSE not in source:
        raise ConfigError(f"{path}:1: a prompt starts with front matter between {{#--- and ---#}}")
    block = source[len(FRONT_OPEN) : source.index(FRONT_CLOSE)]
    lines = block.splitlines()

    def line_of(key: str) -> int:
        return 2 + next((i for i, text in enumerate(lines) if text.strip().startswith(key)), 0)

    try:
        data = tomllib.loads(block)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found.group(1)) + 1 if found else 1 + len(lines)  # "at end of document"
        raise ConfigError(f"{path}:{line}: front matter is not valid TOML: {exc}") from exc
    for key, value in data.items():
        if key not in META_KEYS:
            known = ", ".join(META_KEYS)
            raise ConfigError(
                f"{path}:{line_of(key)}: unknown front-matter key {key!r}; known: {known}"
            )
        kind = META_KEYS[key]
        number = kind is float and isinstance(value, int)
        if isinstance(value, bool) or not (isinstance(value, kind) or number):
            raise ConfigError(
                f"{path}:{line_of(key)}: {key} must be a {kind.__name__}; got {value!r}"
            )
    for key in ("name", "description"):
        if not str(data.get(key, "")).strip():
            raise ConfigError(f"{path}:2: front matter needs a {key}")
    if "temperature" in data and not 0 <= data["temperature"] <= 2:
        raise ConfigError(f"{path}:{line_of('temperature')}: temperature must be between 0 and 2")
    if "max_insights" in data and not 1 <= data["max_insights"] <= 50:
        raise ConfigError(
            f"{path}:{line_of('max_insights')}: max_insights must be between 1 and 50"
        )
    return PromptMeta(**data)


def _check_template(source: str, path: Path) -> None:
    try:
        template = Environment().parse(source)
    except TemplateSyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: template syntax error: {exc.message}") from exc
    blocks = {node.name for node in template.find_all(nodes.Block)}
    for block in ("system", "user"):
        if block not in blocks:
            raise ConfigError(f"{path}: the template needs a {{% block {block} %}}")


def prompts_folder(prompts_dir: str = "") -> Path:
    return Path(prompts_dir) if prompts_dir else templates_root() / "prompts"


def list_prompts(prompts_dir: str = "") -> list[Prompt | ConfigError]:
    """Every prompt in the folder, or the error that keeps it from loading."""
    found: list[Prompt | ConfigError] = []
    for path in sorted(prompts_folder(prompts_dir).glob("*.j2")):
        try:
            found.append(load_prompt(str(path)))
        except ConfigError as exc:
            found.append(exc)
    return found


def load_prompt(name: str, prompts_dir: str = "") -> Prompt:
    folder = prompts_folder(prompts_dir)
    path = Path(name) if name.endswith(".j2") else folder / f"{name}.j2"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.j2")) if folder.is_dir() else []
        raise ConfigError(
            f"no prompt {name!r} ({path}); known prompts: {', '.join(known) or 'none'}"
        )
    source = path.read_text(encoding="utf-8")
    meta = _front_matter(source, path)
    _check_template(source, path)
    return Prompt(name=path.stem, path=path, source=source, meta=meta)
