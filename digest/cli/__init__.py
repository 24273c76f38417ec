"""The `digest` command line: thin wrappers that turn domain errors into one-line messages.

One module per family of commands; importing them registers them on `cli`.
"""

from digest.cli import admin, pipeline, setup
from digest.cli.base import cli

__all__ = ["admin", "cli", "main", "pipeline", "setup"]


def main() -> None:
    cli(prog_name="digest")
