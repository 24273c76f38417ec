"""A real `prefect server start` for the test session, on a real PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.postgres import PostgresServer
from tests.support.smtpserver import free_port


def postgres_database(postgres: PostgresServer, name: str = "prefect") -> str:
    """A new database on `postgres` for a Prefect server, as the URL Prefect wants."""
    return postgres.create_database(name).replace("postgresql+psycopg", "postgresql+asyncpg")


# Concurrency slots' leases on disk, not in the server's memory: a restarted server
# still knows who holds a `whisper` slot (deploy/README.md).
LEASES_ON_DISK = {
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem"
}


class PrefectServer:
    def __init__(self, home: Path, database_url: str, **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api,
            "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOCAL_STORAGE_PATH": str(home / "results"),
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
            **extra_env,
        }
        self.log = (home / "server.log").open("ab")
        self.start()

    def start(self) -> None:
        prefect = Path(sys.executable).with_name("prefect")
        self.process = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait(90)

    def restart(self) -> None:
        """Stop (SIGTERM, as a service manager does) and start again on the same port."""
        self._terminate()
        self.start()

    def _terminate(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited: see {self.log.name}")
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"prefect server did not answer in {seconds:g} s")

    def stop(self) -> None:
        self._terminate()
        self.log.close()
