"""What every command shares: the app state, the group, output helpers."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import date
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape

from digest.core.config import Config, load_config
from digest.core.errors import DigestError, InvalidInput
from digest.core.models import to_json
from digest.core.runlock import run_lock
from digest.core.statefiles import private_dir
from digest.store import Store, redact

console = Console(highlight=False)
SAMPLE_READER = "reader@example.com"


class App:
    """Per-invocation state: config loaded on first use, store opened on first use."""

    def __init__(self, config_path: str | None, verbose: int = 0) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            private_dir(self.config.state_dir)
            self._store = Store(self.config.database_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


F = TypeVar("F", bound=Callable[..., Any])


def locked(command: F) -> F:
    """Run the command holding the state directory's lock: one pipeline run at a time."""

    @functools.wraps(command)
    def wrapper(app: App, *args: Any, **kwargs: Any) -> Any:
        with run_lock(app.config.state_dir, command.__name__):
            return command(app, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class DigestGroup(click.Group):
    """Print DigestError as `Error: <message>` with exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from exc
        except sa.exc.OperationalError as exc:  # a full disk, a dead database server
            app = ctx.obj if isinstance(ctx.obj, App) else None
            where = redact(app.config.database_url) if app else ""  # never the password
            raise click.ClickException(
                f"the state database {where} failed: {exc.orig}; check free disk space and "
                "that the database server is running, then run the command again "
                "(everything already recorded is kept)"
            ) from exc


def emit_json(data: Any) -> None:
    click.echo(json.dumps(to_json(data), indent=2, ensure_ascii=False))


def esc(value: str | None) -> str:
    """Text from feeds, servers or users as Rich shows it literally ("[Live]" stays)."""
    return escape(value or "")


def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


@click.group(cls=DigestGroup)
@click.option("--config", "config_path", metavar="PATH", help="TOML config file.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="podcast-digest")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """Turn podcasts into a daily email of the five best insights."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = ctx.with_resource(closing(App(config_path, verbose)))


def check_date(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise InvalidInput(f"--date {value!r} must be YYYY-MM-DD") from exc
