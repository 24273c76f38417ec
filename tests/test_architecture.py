"""The layers in pyproject.toml hold, and breaking them is caught: `lint-imports` passes
on the tree, and fails on a scratch copy of it with one upward import, naming it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT, "--no-cache"], cwd=folder, capture_output=True, text=True, timeout=300
    )


def lint_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on a scratch copy of the tree where `module` gains one import."""
    for part in ("digest", "flows"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    source = tmp_path / module
    source.write_text(source.read_text() + f"\n{line}  # noqa: E402\n")
    return lint(tmp_path)


def test_the_contracts_hold_and_an_upward_import_breaks_them(tmp_path: Path) -> None:
    kept = lint(ROOT)
    assert kept.returncode == 0, kept.stdout[-2000:]
    assert "Contracts: 2 kept, 0 broken." in kept.stdout
    # The core reaching up into the use cases.
    broken = lint_with(tmp_path, "digest/core/text.py", "from digest.jobs import edition")
    assert broken.returncode != 0
    assert "digest.core is not allowed to import digest.jobs" in broken.stdout
    assert "digest.core.text -> digest.jobs.edition" in broken.stdout


def test_a_stage_importing_another_stage_breaks_them(tmp_path: Path) -> None:
    broken = lint_with(
        tmp_path, "digest/edition/render.py", "from digest.insights import grounding"
    )
    assert broken.returncode != 0
    assert "digest.edition.render -> digest.insights.grounding" in broken.stdout


@pytest.mark.slow  # builds the wheel
def test_the_wheel_installs_no_top_level_flows(tmp_path: Path) -> None:
    """A top-level `flows` is a name many projects install: the wheel carries the flows
    as `digest.flows`, and the CLI finds them there."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("flows/")], "no top-level flows package"
    assert "digest/flows/pipeline.py" in names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    probe = (
        "from digest.cli.orchestration import flows\n"
        "print(flows('pipeline').__name__, flows('pipeline').poll_feeds.name)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,  # not the checkout: its `flows/` must not be what is found
        env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.split() == ["digest.flows.pipeline", "poll-feeds"]
