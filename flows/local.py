"""What a `digest run` in a terminal or a cron job needs around the flows.

With no `PREFECT_API_URL`, Prefect runs flows in ephemeral mode: it starts a
temporary API server (uvicorn, SQLite under `PREFECT_HOME`) for the length of the
process. That server migrates its database on first start, which on a cold, busy
machine took longer than Prefect's default 20 s start-up limit (flows/__init__.py
raises the limit). `prepare` migrates it ahead of time, from `digest init`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from digest.core.errors import DigestError

HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")
STARTUP_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


class PrefectUnavailable(DigestError):
    """Prefect's API (the temporary server, or the one PREFECT_API_URL names) is not there."""


def ephemeral() -> bool:
    """True when no Prefect server is configured: flows start a temporary one."""
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


def prepare() -> str | None:
    """Migrate the temporary server's database now; returns its URL (None with a server).

    Idempotent, and quick when it is current; a failure is reported, not raised, since
    the first run would migrate it anyway."""
    if not ephemeral():
        return None
    import asyncio

    from prefect.server.database import provide_database_interface
    from prefect.server.database.alembic_commands import alembic_upgrade
    from prefect.utilities.asyncutils import run_sync_in_worker_thread

    asyncio.run(run_sync_in_worker_thread(alembic_upgrade))  # as `prefect server database upgrade`
    url = provide_database_interface().database_config.connection_url
    return str(url)


@contextmanager
def prefect_api() -> Iterator[None]:
    """Prefect's "temporary server did not start" as one line that names the setting."""
    try:
        yield
    except RuntimeError as exc:
        if "ephemeral Prefect API server" not in str(exc):
            raise
        limit = os.environ.get(STARTUP_SETTING, "?")
        raise PrefectUnavailable(
            f"Prefect's temporary server did not start within {limit} s "
            f"({STARTUP_SETTING}): raise that limit, or start a server with "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api"
        ) from None


@contextmanager
def local_run(verbose: int = 0) -> Iterator[None]:
    """Settings for a run from a terminal or cron, and one-line errors for Prefect's.

    No flow-run heartbeats: they let a server notice a crashed run through an
    automation; a local run's crash is seen by whoever started it, and each flow run
    paid up to a second at its end joining Prefect's heartbeat thread
    (docs/benchmarks.md). Set either heartbeat variable to keep them.

    Prefect's line per flow and task run ("Finished in state Completed()") goes to the
    Prefect UI as ever, and to the terminal only with `-v`: the terminal shows the
    run's own progress and summary instead."""
    from prefect.settings import temporary_settings

    updates = (
        {}
        if any(os.environ.get(v) for v in HEARTBEAT_VARIABLES)
        else {"flows.heartbeat_frequency": None}
    )
    with temporary_settings(updates=updates), prefect_api(), _quiet_console(verbose):
        yield


@contextmanager
def _quiet_console(verbose: int) -> Iterator[None]:
    """The terminal's log handlers at WARNING for the duration, unless asked for more.

    Prefect's flow and task loggers propagate to the root logger: with the CLI's own
    handler there (`digest -v`'s), Prefect leaves its console handler off and every
    task line reaches the terminal through ours, so both kinds are quieted."""
    import logging

    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    handlers = [
        h
        for h in logging.getLogger().handlers
        if type(h) is logging.StreamHandler or type(h).__name__ == "PrefectConsoleHandler"
    ]
    levels = [h.level for h in handlers]
    for handler in handlers:
        handler.setLevel(level)
    try:
        yield
    finally:
        for handler, before in zip(handlers, levels, strict=True):
            handler.setLevel(before)


def deployed_server() -> bool:
    """True when PREFECT_API_URL names a server that has the process-episode deployment:
    work goes to its workers (`digest retry`) instead of this process."""
    if ephemeral():
        return False
    from prefect.client.orchestration import get_client

    from .pipeline import PROCESS_DEPLOYMENT

    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(PROCESS_DEPLOYMENT)
    except Exception as exc:  # ObjectNotFound, or the server is not there
        from prefect.exceptions import ObjectNotFound

        if isinstance(exc, ObjectNotFound):
            return False
        raise PrefectUnavailable(
            f"the Prefect server at PREFECT_API_URL cannot be reached ({exc}); "
            "start it, or unset PREFECT_API_URL to work here"
        ) from exc
    return True
