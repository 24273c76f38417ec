"""The `digest` command line: thin wrappers that turn domain errors into one-line messages.

One module per family of commands; importing them registers them on `cli`.
"""

from digest.cli import admin, pipeline, prompts, setup
from digest.cli.base import cli

__all__ = ["admin", "cli", "main", "pipeline", "prompts", "setup"]


def main() -> None:
    cli(prog_name="digest")
