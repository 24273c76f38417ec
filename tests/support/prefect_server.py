"""A real `prefect server start` for the test session, on a real PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import unused_port
from tests.support.postgres import PostgresServer


def postgres_database(postgres: PostgresServer, name: str = "prefect") -> str:
    """A new database on `postgres` for a Prefect server, as the URL Prefect wants."""
    return postgres.create_database(name).replace("postgresql+psycopg", "postgresql+asyncpg")


# Concurrency slots' leases on disk, not in the server's memory: a restarted server
# still knows who holds a `whisper` slot (deploy/README.md).
LEASES_ON_DISK = {
    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem"
}


class PortTaken(RuntimeError):
    """The server could not have its port (exited, or another server answers there)."""


class PrefectServer:
    def __init__(self, home: Path, database_url: str, **extra_env: str) -> None:
        self.home = home
        self.log = (home / "server.log").open("ab")
        for attempt in range(5):  # the port it was given may be taken before it binds
            self._at(unused_port(), database_url, extra_env)
            try:
                self.start()
                return
            except PortTaken:
                if attempt == 4:
                    raise

    def _at(self, port: int, database_url: str, extra_env: dict[str, str]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api,
            "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOCAL_STORAGE_PATH": str(self.home / "results"),
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
            **extra_env,
        }

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
        """Until this server answers: the one whose PREFECT_HOME is ours, not another
        process's server that took the port first."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PortTaken(f"prefect server exited: see {self.log.name}")
            try:
                answer = httpx.get(f"{self.api}/admin/settings", timeout=2)
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code == 200:
                if Path(answer.json()["home"]).resolve() == self.home.resolve():
                    return
                self._terminate()
                raise PortTaken(f"port {self.port} answers for another server")
            time.sleep(0.5)
        raise RuntimeError(f"prefect server did not answer in {seconds:g} s")

    def stop(self) -> None:
        self._terminate()
        self.log.close()
