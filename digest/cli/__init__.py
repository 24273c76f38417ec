"""The `digest` command line: thin wrappers that turn domain errors into one-line messages.

One module per family of commands; importing them registers them on `cli`.
"""

import atexit

from digest.cli import admin, channels, pipeline, prompts, setup
from digest.cli.base import cli
from digest.cli.children import exit_on_signals, stop_descendants

__all__ = ["admin", "channels", "cli", "main", "pipeline", "prompts", "setup"]


def main() -> None:
    exit_on_signals()
    # Registered before anything imports Prefect, so it runs after Prefect's own exit
    # hooks (last in, first out): they ship the last logs and stop the temporary server.
    atexit.register(stop_descendants)
    cli(prog_name="digest")
