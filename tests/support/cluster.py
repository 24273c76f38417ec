"""The deployed topology's processes, started with the commands deploy/README.md gives:
a Prefect server on PostgreSQL, `prefect deploy`, and process workers, each with its
own DIGEST_WORKER_NAME and process group (a machine of its own). Used by
tests/hardening/test_cluster.py and bench/workers.py."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from digest.cli.children import descendants
from tests.support.prefect_server import PrefectServer
from tests.support.processes import whisper_workers
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
PREFECT = str(Path(sys.executable).with_name("prefect"))
DIGEST = str(Path(sys.executable).with_name("digest"))


class Cluster:
    """The processes of the topology, started with the commands deploy/README.md gives."""

    def __init__(self, server: PrefectServer, config: Path, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.env = {
            **server.env,
            "DIGEST_CONFIG": str(config),
            "DIGEST_APP_DIR": str(ROOT),
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "OMP_WAIT_POLICY": "PASSIVE",
        }
        self.env.pop("PREFECT_API_DATABASE_CONNECTION_URL")  # a worker knows only the API
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def run(self, *args: str) -> str:
        done = subprocess.run(
            args, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
        return done.stdout

    def start_worker(self, name: str, pool: str, *limit: str) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.workers[name] = subprocess.Popen(
            [PREFECT, "worker", "start", "--pool", pool, "--name", name, *limit],
            env={**self.env, "DIGEST_WORKER_NAME": name},
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a machine of its own
        )

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker and everything it started, as a machine that dies."""
        worker = self.workers.pop(name)
        doomed = [worker.pid, *descendants(worker.pid)]  # flow runs get sessions of their own
        for pid in doomed:  # freeze all first: none may finish its work while others die
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait()

    def transcribing(self) -> list[str]:
        """Workers with a Whisper process below them: it runs only inside a `whisper` slot."""
        return [name for name, worker in self.workers.items() if whisper_workers(worker.pid)]

    def stop(self) -> None:
        """Stop every worker at once: each waited for in turn took 20 s of the suite."""
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for worker in self.workers.values():
            try:
                worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()

    def client(self) -> Any:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.server.api}):
            return get_client(sync_client=True)

    def deploy(self) -> None:
        """bootstrap.py and `prefect deploy`, then pause the schedules: callers start
        every run themselves, at known moments."""
        config = self.env["DIGEST_CONFIG"]
        self.run(sys.executable, str(ROOT / "deploy" / "bootstrap.py"), "--config", config)
        self.run(PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", "deploy/prefect.yaml")
        with self.client() as client:
            for name in ("poll-feeds/poll-feeds", "daily-digest/daily-digest"):
                client.pause_deployment(client.read_deployment_by_name(name).id)

    def start_run(self, deployment: str, **parameters: Any) -> Any:
        with self.client() as client:
            found = client.read_deployment_by_name(deployment)
            return client.create_flow_run_from_deployment(found.id, parameters=parameters)

    def wait_final(self, run_id: Any, seconds: float) -> Any:
        with self.client() as client:
            return wait_for(
                lambda: (r := client.read_flow_run(run_id)).state.is_final() and r,
                seconds,
                f"flow run {run_id}",
            )
