"""One config, store and warm Whisper worker per process, shared by every task run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path

import httpx
from prefect.concurrency.sync import concurrency

from digest.core.config import Config, load_config
from digest.core.errors import ServiceUnavailable
from digest.core.statefiles import private_dir
from digest.jobs import Transcription
from digest.store import Store

_lock = threading.Lock()


def context(config_path: str | None) -> tuple[Config, Store]:
    """The config and store for a config file, loaded again when the file changes (a
    long-lived worker picks up an operator's edit at its next task)."""
    return _context(config_path, _version(config_path))


def _version(config_path: str | None) -> int:
    path = Path(config_path) if config_path else None
    try:
        return path.stat().st_mtime_ns if path else 0
    except OSError:
        return 0  # load_config reports a missing file with its own message


@lru_cache(maxsize=8)
def _context(config_path: str | None, _version: int) -> tuple[Config, Store]:
    config = load_config(config_path)
    private_dir(config.state_dir)
    from prefect.settings import PREFECT_API_URL

    o = config.orchestration
    ensure_limits(PREFECT_API_URL.value(), o.whisper_slots, o.llm_requests_per_minute)
    return config, Store(config.database_url)


@lru_cache(maxsize=8)
def ensure_limits(api_url: str | None, whisper_slots: int, llm_per_minute: int) -> None:
    """The global limits the tasks take: `whisper` (strict) and the `llm` rate limit.

    deploy/bootstrap.py creates them for a server; this makes a fresh server or
    Prefect's ephemeral mode work too. Upserting is idempotent."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name("whisper", whisper_slots)
        if llm_per_minute:
            client.upsert_global_concurrency_limit_by_name(
                "llm", llm_per_minute, slot_decay_per_second=llm_per_minute / 60
            )


_transcriptions: dict[tuple[str | None, int], Transcription] = {}


# A killed worker's slot returns when its lease lapses; Prefect's default lease is five
# minutes, the shortest it allows is one.
WHISPER_LEASE_SECONDS = 60


def deployed() -> bool:
    """True in a deployment's run: a worker (or `digest serve`) started this process for
    it and says so in PREFECT__FLOW_RUN_ID. Answered without an API round trip, which
    `prefect.runtime.deployment.id` makes outside deployments (measured: 40 ms a call)."""
    if os.environ.get("PREFECT__FLOW_RUN_ID"):
        return True
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.deployment_id)


# How long a transcription waits for the server to grant its slot when the server is
# not answering (a restart takes seconds) before the episode is left waiting.
SLOT_PATIENCE_SECONDS = 120.0


def whisper_slot() -> AbstractContextManager[None]:
    """A slot of the cluster-wide `whisper` limit for deployed runs (workers share the
    GPUs). A local `digest run` holds the state directory's run lock instead: a slot
    held by a local run that was killed would stay taken (in ephemeral mode the
    server that could expire its lease dies with the run), wedging every later run."""
    if not deployed():
        return nullcontext()
    return _patient_slot()


@contextmanager
def _patient_slot() -> Iterator[None]:
    """The slot, asked for again while the server does not answer (restarting); then
    ServiceUnavailable, so the episode waits for the next poll without using an
    attempt. A lease renewal that fails while the server restarts does not stop the
    transcription: the lease is renewed once it is back, or lapses after a minute."""
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError

    deadline = time.monotonic() + SLOT_PATIENCE_SECONDS
    pause = 1.0
    with ExitStack() as stack:
        while True:
            try:
                stack.enter_context(
                    concurrency(
                        "whisper",
                        occupy=1,
                        strict=True,
                        lease_duration=WHISPER_LEASE_SECONDS,
                        raise_on_lease_renewal_failure=False,
                    )
                )
                break
            except (ConcurrencySlotAcquisitionError, httpx.HTTPError) as exc:
                if time.monotonic() + pause > deadline:
                    raise ServiceUnavailable(
                        f"the Prefect server did not grant a `whisper` slot for "
                        f"{SLOT_PATIENCE_SECONDS:.0f} s ({exc}); the episode waits for the "
                        "next poll"
                    ) from exc
                time.sleep(pause)
                pause = min(pause * 2, 10.0)
        yield


def transcription(config_path: str | None) -> Transcription:
    """A long-lived Transcription: the Whisper model loads once per worker process."""
    key = (config_path, _version(config_path))
    with _lock:
        if key not in _transcriptions:
            for stale in [k for k in _transcriptions if k[0] == config_path]:
                _transcriptions.pop(stale).close()
            config, store = context(config_path)
            _transcriptions[key] = Transcription(store, config, whisper_guard=whisper_slot)
        return _transcriptions[key]


ACTIVE_PROMPT_VARIABLE = "digest-active-prompt"


def prompt_override() -> str | None:
    """The Prefect Variable `digest-active-prompt`, if set: operators switch prompts from
    the UI without a deploy; unset, `[extraction] prompt` decides."""
    from prefect.variables import Variable

    value = Variable.get(ACTIVE_PROMPT_VARIABLE, default=None)
    return str(value) if value else None
