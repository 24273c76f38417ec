"""Faults the pipeline promises to survive: a concurrent run, a full disk, an LLM
endpoint that is down for a long time, a PostgreSQL restart, an SMTP server that
says 421. Each must cost nothing already done and end with the job finished."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest import jobs
from digest.cli import cli
from digest.core.config import Config
from digest.jobs.extraction import Extractor
from digest.jobs.transcription import Transcription
from digest.store import Store
from tests.support.fake_openai import FakeOpenAI
from tests.support.feeds import item, serve_feed
from tests.support.httpserver import LoopbackServer, Route
from tests.support.ports import bound_socket, port_of
from tests.support.postgres import PostgresServer
from tests.support.seed import CORPUS, seed_insights, seed_transcripts
from tests.support.smtpserver import SmtpServer

Clips = dict[str, tuple[Path, str]]


def test_one_run_at_a_time_and_a_killed_holder_frees_the_lock(make_config: Any) -> None:
    config = make_config()
    config_file = config.state_dir.parent / "digest.toml"
    config_file.write_text(f'[storage]\nstate_dir = "{config.state_dir}"\n')
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from digest.core.runlock import run_lock\n"
         "with run_lock(Path(sys.argv[1]), 'run'):\n print('held', flush=True); time.sleep(60)",
         str(config.state_dir)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    runner = CliRunner()
    for command in (["run"], ["poll"], ["process"], ["send"]):
        result = runner.invoke(cli, ["--config", str(config_file), *command])
        assert result.exit_code == 1, result.output
        assert "another pipeline command is running" in result.output
        assert f"pid {holder.pid}" in result.output, "the message names the holder"
    holder.kill()  # SIGKILL: no cleanup code runs, the kernel drops the flock
    holder.wait(10)
    result = runner.invoke(cli, ["--config", str(config_file), "poll"])
    assert "another pipeline command" not in result.output


@pytest.mark.slow
def test_disk_full_while_writing_media_fails_clearly_and_the_next_run_recovers(
    http_server: LoopbackServer, make_config: Any, speech: Clips
) -> None:
    config = make_config()
    store = Store(config.database_url)
    long = config.state_dir.parent / "long.mp3"  # ~4 MB: media far bigger than the database
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-stream_loop", "12", "-i",
         str(speech["compression"][0]), "-c", "copy", str(long)],
        check=True,
    )  # fmt: skip
    audio = long.read_bytes()
    http_server.routes["/ep.mp3"] = Route(audio, content_type="audio/mpeg")
    serve_feed(http_server, store, [item(1, audio=http_server.url("/ep.mp3"))])
    jobs.poll_feeds(store, config)
    config_file = config.state_dir.parent / "digest.toml"
    config_file.write_text(
        f'[storage]\nstate_dir = "{config.state_dir}"\n[feeds]\nallow_private_addresses = true\n'
    )
    limit = (config.state_dir / "digest.db").stat().st_size + 1024 * 1024  # room for the WAL
    assert limit < len(audio), "the media cannot fit under the limit"

    def full_disk() -> None:  # the kernel refuses writes past `limit` bytes (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = subprocess.run(
        [sys.executable, "-m", "digest.cli", "--config", str(config_file), "process"],
        capture_output=True, text=True, preexec_fn=full_disk, timeout=300,
    )  # fmt: skip
    assert "Episode 1" in full.stdout and "free disk space" in full.stdout, full.stdout
    [episode] = store.episodes.list()
    assert episode.status == "pending" and episode.attempts == 0, "a full disk is not its fault"
    assert not list((config.state_dir / "media").glob("*")), "no partial file left behind"
    with Transcription(store, config) as transcription:  # space again: the next run finishes
        assert transcription.transcribe(store.episodes.get(episode.id)).outcome == "transcribed"


def test_an_llm_outage_leaves_episodes_waiting_and_the_digest_still_goes_out(
    make_config: Any, fake_openai: FakeOpenAI, smtp_server: SmtpServer
) -> None:
    smtp = {"host": "127.0.0.1", "port": smtp_server.port, "security": "none"}
    dead = bound_socket()  # held, never listening: the endpoint refuses connections
    down: Config = make_config(
        extraction={"backend": "openai", "base_url": f"http://127.0.0.1:{port_of(dead)}/v1",
                    "max_retries": 1, "timeout_seconds": 2},
        smtp=smtp,
    )  # fmt: skip
    store = Store(down.database_url)
    seed_insights(store, make_config(), show="Ready Show", scripts=("kimi-k2",))  # extracted
    [late] = seed_transcripts(store, show="Late Show", scripts=("mercury-2",))
    store.subscribers.add("reader@example.org", jobs.utcnow())
    for _run in range(down.transcription.max_attempts + 2):  # the endpoint stays down
        result = Extractor(store, down).extract(store.episodes.get(late))
        assert result.outcome == "waiting", result
        assert "unavailable" in (result.error or "") and "next run" in (result.error or "")
    episode = store.episodes.get(late)
    assert (episode.status, episode.attempts) == ("transcribed", 0), "no attempt used up"
    assert late in [e.id for e in Extractor(store, down).pending()], "still in line"

    report = jobs.send_digests(store, down)  # the hour comes: send what is ready
    assert report.count("sent") == 1
    [message] = smtp_server.mailbox.messages
    assert "Ready Show" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    up = make_config(extraction={"backend": "openai", "base_url": fake_openai.base_url})
    back = Extractor(store, up).extract(store.episodes.get(late))
    assert back.outcome == "extracted" and back.insights
    assert store.episodes.get(late).status == "extracted"


@pytest.mark.postgres
def test_a_postgresql_restart_mid_run_costs_nothing(
    pg_server: PostgresServer, http_server: LoopbackServer, make_config: Any
) -> None:
    config = make_config(storage={"database_url": pg_server.create_database("restart_test")})
    store = Store(config.database_url)
    text = (CORPUS / "kimi-k2.txt").read_bytes()
    http_server.routes["/t.txt"] = Route(text, content_type="text/plain")
    transcript = (http_server.url("/t.txt"), "text/plain")
    serve_feed(
        http_server, store, [item(1, audio=http_server.url("/e.mp3"), transcript=transcript)]
    )
    store.subscribers.add("reader@example.org", jobs.utcnow())
    assert jobs.poll_feeds(store, config)[0].outcome == "updated"
    pg_server.restart()  # every pooled connection is now dead
    with Transcription(store, config) as transcription:
        [episode] = store.episodes.processable(max_attempts=3)
        assert transcription.transcribe(episode).outcome == "transcribed"
    pg_server.restart()
    extractor = Extractor(store, config)
    assert [extractor.extract(e).outcome for e in extractor.pending()] == ["extracted"]
    pg_server.restart()
    assert jobs.send_digests(store, config).count("sent") == 1
    store.close()


def test_a_421_fails_one_message_and_the_batch_goes_on(
    store_sqlite: Store, make_config: Any, smtp_server: SmtpServer
) -> None:
    config = make_config(smtp={"host": "127.0.0.1", "port": smtp_server.port, "security": "none"})
    seed_insights(store_sqlite, config)
    readers = [f"r{n}@example.org" for n in range(4)]
    for address in readers:
        store_sqlite.subscribers.add(address, jobs.utcnow())
    smtp_server.mailbox.refuse[readers[1]] = "421 4.3.2 Service shutting down"
    first = jobs.send_digests(store_sqlite, config)
    assert (first.count("sent"), first.count("failed")) == (3, 1)
    del smtp_server.mailbox.refuse[readers[1]]
    second = jobs.send_digests(store_sqlite, config)  # the next run sends only what is missing
    assert second.count("sent") == 1
    assert sorted(str(m["To"]) for m in smtp_server.mailbox.messages) == sorted(readers)


@pytest.fixture
def store_sqlite(make_config: Any) -> Store:
    return Store(make_config().database_url)


@pytest.mark.slow
def test_digest_run_with_the_llm_down_reports_waiting_and_the_next_run_catches_up(
    prefect_server: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    def digest(base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
        config = tmp_path / "digest.toml"
        config.write_text(
            f'[storage]\nstate_dir = "{tmp_path / "state"}"\n'
            f'[extraction]\nbackend = "openai"\nbase_url = "{base_url}"\nmax_retries = 0\n'
        )
        return subprocess.run(
            [sys.executable, "-m", "digest.cli", "--config", str(config), *args],
            env=prefect_server.env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    refusing = bound_socket()  # held, never listening, across the runs below
    dead = f"http://127.0.0.1:{port_of(refusing)}/v1"
    assert digest(dead, "init", "--sample").returncode == 0
    down = digest(dead, "run")
    assert down.returncode == 0, down.stderr[-2000:]
    assert "3 waiting, 0 failed" in down.stdout, down.stdout
    assert "the model endpoint is unavailable" in " ".join(down.stdout.split())  # rich wraps
    with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
        assert {(e.status, e.attempts) for e in store.episodes.list()} == {("transcribed", 0)}
    up = digest(fake_openai.base_url, "run")
    assert up.returncode == 0, up.stderr[-2000:]
    assert "Processed 3 episode(s): 3 completed, 0 failed." in up.stdout, up.stdout
    assert "reader@example.com.eml" in up.stdout, "the digest went out once the LLM was back"
    with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
        assert {e.status for e in store.episodes.list()} == {"extracted"}
