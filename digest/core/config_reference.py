"""Every setting as annotated TOML, made from the declarations in `digest.core.config`.

`digest config` prints it (a starting point for a `digest.toml`), and
docs/configuration.md embeds it; a test keeps the page equal to this output, so no
document can quote a default the code does not have.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from digest.core.settings import SECRET_ENV, SECTIONS

COMMENT_COLUMN = 32


def toml_value(value: Any) -> str:
    """A value as TOML writes it (strings quoted, booleans lower-case, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def defaults() -> dict[tuple[str, str], Any]:
    """(section, key) -> default, for every declared setting."""
    found = {}
    for section, cls in SECTIONS.items():
        instance = cls()
        for f in dataclasses.fields(cls):
            found[(section, f.name)] = getattr(instance, f.name)
    return found


def reference() -> str:
    """The whole configuration with its defaults, one comment per setting."""
    lines = [
        "# podcast-digest settings with their defaults (`digest config`).",
        "# Secrets come from the environment only: " + ", ".join(sorted(SECRET_ENV.values())) + ".",
    ]
    for section, cls in SECTIONS.items():
        instance = cls()
        lines += ["", f"[{section}]"]
        for f in dataclasses.fields(cls):
            line = f"{f.name} = {toml_value(getattr(instance, f.name))}"
            doc = f.metadata.get("doc", "")
            choices = f.metadata.get("choices") or ()
            if choices:
                doc = f"{' | '.join(choices)}: {doc}"
            lines.append(f"{line:<{COMMENT_COLUMN - 1}} # {doc}" if doc else line)
    return "\n".join(lines) + "\n"
