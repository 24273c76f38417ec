"""Rewrite the settings block of docs/configuration.md from `digest config` (the test
tests/test_docs.py fails until this has been run after a setting changed)."""

import re
from pathlib import Path

from digest.core.config_reference import reference

page = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
text = page.read_text()
new = re.sub(r"```toml\n.*?```", lambda _: f"```toml\n{reference()}```", text, count=1, flags=re.S)
page.write_text(new)
print(f"wrote {page}")
