"""SIGKILL at the worst moments, then `digest run` again: nothing lost, nothing doubled.

One state, one sequence of real `digest run` processes against the session's Prefect
server: killed while downloading, while Whisper runs, while the LLM answers, and in
the middle of sending a batch; then a last run that must finish the job. Afterwards
every episode was transcribed once (each enclosure crossed the network whole once:
a second transcription would need a second download) and every subscriber got
exactly one message (the single message in flight at the kill may arrive twice, under the same
Message-ID, which receiving servers use to drop the copy: SMTP offers nothing
stronger, as docs/reliability.md explains).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from digest import jobs
from digest.store import Store
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.feeds import item, serve_feed
from tests.support.httpserver import LoopbackServer, Route
from tests.support.prefect_server import PrefectServer
from tests.support.processes import alive, whisper_workers
from tests.support.smtpserver import SmtpServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
SUBSCRIBERS = [f"reader{n}@example.org" for n in range(6)]


class Runs:
    """`digest run` as a process group, killed with SIGKILL when a condition holds."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config, self.env = config, env
        self.process: subprocess.Popen[str] | None = None  # the run being watched

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "--config", str(self.config), "run"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the run and its Whisper worker die together
        )

    def kill_when(self, condition: Callable[[], bool], what: str) -> None:
        process = self.process = self.start()
        deadline = time.monotonic() + 120
        while not condition():
            if process.poll() is not None:
                raise AssertionError(f"the run ended before {what}: {process.stdout.read()}")  # type: ignore[union-attr]
            assert time.monotonic() < deadline, f"never reached: {what}"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        assert process.returncode == -signal.SIGKILL

    def finish(self) -> str:
        process = self.start()
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0, out[-3000:]
        return out


def test_killed_runs_resume_and_nothing_is_lost_or_doubled(
    prefect_server: PrefectServer,
    http_server: LoopbackServer,
    fake_openai: FakeOpenAI,
    smtp_server: SmtpServer,
    speech: dict[str, tuple[Path, str]],
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[storage]\nstate_dir = "{state}"\n'
        "[feeds]\nallow_private_addresses = true\n"
        f'[extraction]\nbackend = "openai"\nbase_url = "{fake_openai.base_url}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\nsecurity = "none"\n'
        '[digest]\nsend_time = "00:00"\n[web]\nbase_url = "http://digest.example.org"\n'
    )
    audio = {name: path.read_bytes() for name, (path, _) in speech.items()}
    for name, body in audio.items():  # slow at first: the first run dies mid-download
        http_server.routes[f"/{name}.mp3"] = Route(
            body, content_type="audio/mpeg", ranges=True, trickle=0.002
        )
    items = [item(n + 1, audio=http_server.url(f"/{name}.mp3")) for n, name in enumerate(audio)]
    with Store(f"sqlite:///{state / 'digest.db'}") as store:
        serve_feed(http_server, store, items)
        for address in SUBSCRIBERS:
            store.subscribers.add(address, jobs.utcnow())
    runs = Runs(config, prefect_server.env)
    media = state / "media"

    # 1. Killed while downloading: some bytes of the first enclosure have arrived.
    runs.kill_when(
        lambda: any(p.stat().st_size > 20_000 for p in media.glob("*.part")), "a download"
    )
    for route in http_server.routes.values():
        route.trickle = 0.0

    # 2. Killed while Whisper runs (the worker process is up and working).
    seen: list[int] = []

    def transcribing() -> bool:
        assert runs.process is not None
        seen[:] = whisper_workers(runs.process.pid)
        return bool(seen)

    runs.kill_when(transcribing, "transcription")
    wait_for(lambda: not any(alive(pid) for pid in seen), 30, "the worker to die with its run")
    # A local run holds the state directory's lock, never a cluster `whisper` slot: a
    # slot held by a killed run stays taken (forever, in ephemeral mode) and wedges
    # every later run. This was a real hang before the fix.
    limit = httpx.get(f"{prefect_server.api}/v2/concurrency_limits/whisper", timeout=10)
    assert limit.status_code == 404 or limit.json()["active_slots"] == 0, limit.text

    # 3. Killed while the LLM is answering the first extraction.
    chat = "/v1/chat/completions"
    fake_openai.queue.append(Reply(503, {"error": {"message": "slow"}}, delay=60))
    runs.kill_when(lambda: bool(fake_openai.calls_to(chat)), "an extraction")
    fake_openai.queue.clear()

    # 4. Killed in the middle of sending the batch.
    smtp_server.mailbox.delay = 0.3
    runs.kill_when(lambda: len(smtp_server.mailbox.messages) >= 2, "the middle of the batch")
    smtp_server.mailbox.delay = 0.0

    # 5. The run after: everything finishes.
    out = runs.finish()
    assert "0 failed" in out or "Processed 0 episode(s)" in out, out

    with Store(f"sqlite:///{state / 'digest.db'}") as store:
        episodes = store.episodes.list()
        assert len(episodes) == len(audio)
        assert {e.status for e in episodes} == {"extracted"}, [(e.title, e.error) for e in episodes]
        for e in episodes:
            assert store.transcripts.get(e.id) is not None
        assert not list(media.glob("*.part"))
        [day] = store.digests.dates()  # the send's own date, whatever the clock says now
        delivered = {d.subscriber_id: d for d in store.digests.deliveries(day)}
        assert {d.status for d in delivered.values()} == {"sent"} and len(delivered) == 6
    # Transcribed once: media is deleted after transcription, so a second one would have
    # fetched the file whole again. The download killed in step 1 resumed with Range.
    for name in audio:
        whole = [r for r in http_server.seen(f"/{name}.mp3") if "range" not in r.headers]
        assert len(whole) == 1, f"{name}.mp3 fetched whole {len(whole)} times"
    per_reader: dict[str, set[str]] = {}
    for message in smtp_server.mailbox.messages:
        per_reader.setdefault(str(message["To"]), set()).add(str(message["Message-ID"]))
    assert sorted(per_reader) == sorted(SUBSCRIBERS), "every subscriber got the digest"
    assert all(len(ids) == 1 for ids in per_reader.values()), "never two different messages"
    assert len(smtp_server.mailbox.messages) <= len(SUBSCRIBERS) + 1, "at most the one in flight"
    assert fake_openai.calls_to(chat), "extraction ran through the LLM"
