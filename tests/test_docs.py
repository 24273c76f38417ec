"""The docs say what the code does: defaults quoted in prose match the declarations,
config examples load, links resolve, and the README stays a five-minute read."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.core.config import config_from_dict
from digest.core.config_reference import defaults, reference

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOML_BLOCK = re.compile(r"```toml\n(.*?)```", re.S)
# `window_seconds` (300), `[feeds] lookback_hours` (48), `max_per_episode` (2) ...
QUOTED_DEFAULT = re.compile(r"`(?:\[(\w+)\] )?(\w+)` \(([\d,.]+|\"[^\"]*\"|true|false)\)")


def test_the_readme_is_a_five_minute_read() -> None:
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024


def test_configuration_page_is_the_output_of_digest_config() -> None:
    printed = CliRunner().invoke(cli, ["config"]).output
    assert printed == reference()
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert f"```toml\n{printed}```" in page, "regenerate docs/configuration.md"
    assert config_from_dict(tomllib.loads(printed)) is not None, "the reference loads"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_examples_in_the_docs_load(doc: Path) -> None:
    for block in TOML_BLOCK.findall(doc.read_text()):
        config_from_dict(tomllib.loads(block))  # unknown keys or bad values raise


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if text.startswith('"'):
        return text.strip('"')
    number = float(text.replace(",", ""))
    return int(number) if number.is_integer() else number


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_defaults_quoted_in_prose_are_the_codes(doc: Path) -> None:
    known = defaults()
    checked = 0
    for section, key, text in QUOTED_DEFAULT.findall(doc.read_text()):
        candidates = {v for (s, k), v in known.items() if k == key and (not section or s == section)
                      if not isinstance(v, dict)}  # fmt: skip
        if not candidates:
            continue  # not a setting (a field of the JSON contract, say)
        assert _value(text) in candidates, (
            f"{doc.name}: `{key}` ({text}) but the code says {candidates}"
        )
        checked += 1
    if doc.name == "pipeline.md":
        assert checked >= 5, "the stage docs quote defaults; the pattern must keep finding them"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


# `tests/x.py::test_name`, or `::test_name` for another test of the file named before it.
TEST_REF = re.compile(r"(tests/[\w/]+\.py)?::(test_\w+)")
PROMISES = [ROOT / "docs" / "security.md", ROOT / "docs" / "reliability.md"]


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def _references(text: str) -> list[tuple[str, str]]:
    found, current = [], ""
    for file, name in TEST_REF.findall(text):
        current = file or current
        assert current, f"{name}: `::{name}` with no file named before it"
        found.append((current, name))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_test_the_docs_name_exists(doc: Path) -> None:
    for file, name in _references(doc.read_text()):
        path = ROOT / file
        assert path.is_file(), f"{doc.name} names {file}, which does not exist"
        assert name in _tests_in(path), f"{doc.name} names {file}::{name}, which does not exist"


@pytest.mark.parametrize("doc", PROMISES, ids=lambda p: p.name)
def test_every_promise_in_the_tables_names_its_test(doc: Path) -> None:
    rows = [
        line
        for line in doc.read_text().splitlines()
        if line.startswith("| ") and not re.match(r"\|[-| ]+\|$", line)
    ]
    headers = {line for line in rows if " test |" in line and "::" not in line}
    body = [line for line in rows if line not in headers]
    assert len(body) >= 20, "the tables are still there to check"
    for line in body:
        assert _references(line), f"{doc.name}: a promise without its test: {line[:80]}"
