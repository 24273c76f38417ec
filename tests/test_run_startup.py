"""A main run that holds: Prefect's temporary server gets time to start, `digest init`
prepares its database, a server that cannot start is one line naming the setting, and
no process outlives a `digest run` that failed or was interrupted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import digest, digest_env, gone, sample_config


def test_prefect_waits_generously_for_its_temporary_server_unless_told_otherwise() -> None:
    code = (
        "import flows\nfrom prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
        " as limit\nprint(limit.value())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_SERVER_EPHEMERAL")}
    ours = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert ours.stdout.strip() == "300", ours.stderr[-500:]
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "45"
    theirs = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert theirs.stdout.strip() == "45", "a value the user set wins"


@pytest.mark.slow  # starts Prefect
def test_init_prepares_prefects_database_so_the_first_run_does_not_migrate_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "prefect-home"
    env, _ = digest_env(home)
    done = digest(sample_config(tmp_path), env, "init", "--sample")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Prefect database" in done.stdout
    with sqlite3.connect(home / "prefect.db") as db:
        [(revision,)] = db.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    assert revision and {"flow_run", "task_run", "deployment"} <= tables
    again = digest(sample_config(tmp_path), env, "init")
    assert again.returncode == 0, "preparing a current database again is harmless"


@pytest.mark.slow
def test_a_server_that_cannot_start_in_time_is_one_line_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    config = sample_config(tmp_path)
    ready, _ = digest_env(tmp_path / "ready-home")
    assert digest(config, ready, "init", "--sample").returncode == 0
    # A fresh, unmigrated Prefect home and one second: the server cannot make it.
    env, token = digest_env(
        tmp_path / "cold-home", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1"
    )
    failed = digest(config, env, "run")
    assert failed.returncode == 1, failed.stdout[-2000:] + failed.stderr[-2000:]
    errors = [line for line in failed.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, failed.stderr[-3000:]
    assert "did not start within 1 s" in errors[0]
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in errors[0]
    assert "PREFECT_API_URL" in errors[0], "and says how to use a real server instead"
    assert "Traceback" not in failed.stderr
    assert gone(token) == [], "the temporary server was left running"


def descendants_named(pid: int, word: str) -> bool:
    from digest.cli.children import descendants

    for child in descendants(pid):
        try:
            if word.encode() in Path(f"/proc/{child}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


@pytest.mark.slow
def test_an_interrupted_run_leaves_no_process_behind(tmp_path: Path) -> None:
    config = sample_config(tmp_path)
    env, token = digest_env(tmp_path / "home")
    assert digest(config, env, "init", "--sample").returncode == 0
    run = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "--config", str(config), "run"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not descendants_named(run.pid, "digest.transcripts.worker"):  # mid-transcription
            assert run.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, "no Whisper worker appeared"
            time.sleep(0.2)
        assert descendants_named(run.pid, "uvicorn"), "the temporary server is running"
        run.send_signal(signal.SIGTERM)  # what a service manager or `kill` sends
        assert run.wait(60) == 128 + signal.SIGTERM
        assert gone(token) == [], "a child of the interrupted run is still running"
    finally:
        run.kill()
