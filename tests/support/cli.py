"""The `digest` command in process (CliRunner), on a fresh state folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli

Digest = Callable[..., str]


def command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Digest:
    """`digest(*args, ok=True)`: the output of `digest --config <tmp config> *args`,
    asserting it succeeded (or, with ok=False, that it failed)."""
    config = tmp_path / "digest.toml"
    config.write_text('[storage]\nstate_dir = "state"\n')
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    runner = CliRunner()

    def digest(*args: str, ok: bool = True) -> str:
        result = runner.invoke(cli, ["--config", str(config), *args])
        assert (result.exit_code == 0) is ok, result.output
        return result.output

    return digest
