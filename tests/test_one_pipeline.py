"""One pipeline: the CLI commands and the Prefect flows are two loops over the same
`digest.jobs` units, so the same faults must leave the same states; and the flows'
retries fire for network faults, and only for them."""

from __future__ import annotations

import resource
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest import jobs
from digest.cli import cli
from digest.core.config import config_from_dict, load_config
from digest.core.errors import FetchError
from digest.jobs.poll import feed_client
from digest.store import Store
from tests.support.fake_openai import FakeOpenAI
from tests.support.feeds import item
from tests.support.httpserver import LoopbackServer, Route
from tests.support.ports import bound_socket, port_of, rebind
from tests.support.seed import seed_insights
from tests.support.smtpserver import SmtpServer

DATABASES = ("sqlite",)  # the CLI and flows agreeing, not the database: one backend is enough

Clips = dict[str, tuple[Path, str]]
READER = "reader@example.org"


def rss(*items: str, title: str = "Test Show") -> bytes:
    return (
        '<rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel>'
        f"<title>{title}</title>{''.join(items)}</channel></rss>"
    ).encode()


def write_config(folder: Path, **sections: str) -> Path:
    """A config file (flows take a path): state in `folder`, loopback feeds allowed,
    readers due from midnight (whatever hour the suite runs)."""
    config = folder / "digest.toml"
    body = (
        f'[storage]\nstate_dir = "{folder / "state"}"\n[feeds]\nallow_private_addresses = true\n'
        '[digest]\nsend_time = "00:00"\n[web]\nbase_url = "http://digest.example.org"\n'
    )
    config.write_text(body + "".join(f"[{k}]\n{v}\n" for k, v in sections.items()))
    return config


# ---------------------------------------------------------------- retries
@pytest.mark.slow  # starts Prefect
def test_the_poll_flow_retries_network_faults_and_records_the_feed_in_the_same_run(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    from flows.pipeline import poll_feeds

    config = write_config(tmp_path)
    routes = {
        "/reset.xml": Route(
            rss(item(1, audio="https://cdn.example/r.mp3"), title="Reset once"), drop_first=1
        ),
        "/busy.xml": Route(
            rss(item(1, audio="https://cdn.example/b.mp3"), title="Busy once"),
            status_first=(503, 1),
        ),
        "/gone.xml": Route(status=404, body=b"no such feed"),
    }
    http_server.routes.update(routes)
    with Store(load_config(str(config)).database_url) as store:
        for path in routes:
            store.feeds.add(http_server.url(path), jobs.utcnow())
        new = poll_feeds(str(config), enqueue=False)
        feeds = {f.url.rsplit("/", 1)[1]: f for f in store.feeds.list()}
    assert http_server.count("/reset.xml") == 2, "a hang-up is retried"
    assert http_server.count("/busy.xml") == 2, "a 503 is retried"
    assert http_server.count("/gone.xml") == 1, "a 404 is not: retrying cannot help"
    assert feeds["reset.xml"].consecutive_failures == 0 and feeds["reset.xml"].title == "Reset once"
    assert feeds["busy.xml"].consecutive_failures == 0 and feeds["busy.xml"].title == "Busy once"
    assert len(new) == 2, "both feeds' episodes were recorded in this one run"
    assert feeds["gone.xml"].consecutive_failures == 1
    assert "HTTP 404" in (feeds["gone.xml"].last_error or "")


def test_network_faults_are_retryable_and_refusals_of_the_item_are_not(
    http_server: LoopbackServer, make_config: Any
) -> None:
    config = make_config()
    refused = bound_socket()  # held, never listening, for the whole test
    http_server.routes["/busy.xml"] = Route(status=429)
    http_server.routes["/gone.xml"] = Route(status=410)
    cases = {
        f"http://127.0.0.1:{port_of(refused)}/feed.xml": True,  # connection refused
        http_server.url("/busy.xml"): True,
        http_server.url("/gone.xml"): False,
    }
    with feed_client(config) as client, Store(config.database_url) as store:
        for url, retryable in cases.items():
            feed = store.feeds.add(url, jobs.utcnow())
            with pytest.raises(FetchError) as caught:
                jobs.fetch(client, feed, config)
            assert caught.value.retryable is retryable, (url, caught.value)


# ---------------------------------------------------------------- the fault matrix
@contextmanager
def disk_limit(state_dir: Path, media_bytes: int) -> Iterator[None]:
    """A disk that fills up: the kernel refuses to grow any file of this process past a
    limit (EFBIG) that the database and its journal stay under and the media cannot."""
    used = max(p.stat().st_size for p in state_dir.rglob("*") if p.is_file())
    limit = used + 4 * 1024 * 1024
    assert limit < media_bytes, "the media must not fit under the limit"
    before = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, before)


class World:
    """The servers both paths meet, with each fault switched on or off."""

    def __init__(self, http: LoopbackServer, smtp: SmtpServer, llm: FakeOpenAI, audio: bytes):
        self.http, self.smtp, self.llm, self.audio = http, smtp, llm, audio
        # Bound, never listening, while the world lasts: connections are refused, and no
        # other process's server can take the ports meanwhile.
        self.refusing: socket.socket | None = bound_socket()
        self.refusing_port = port_of(self.refusing)
        self.refusing_feed = f"http://127.0.0.1:{self.refusing_port}/feed.xml"
        self.dead = bound_socket()
        self.dead_llm = f"http://127.0.0.1:{port_of(self.dead)}/v1"
        self.late: LoopbackServer | None = None
        transcript = " ".join(["Pricing power comes from switching costs."] * 9)
        http.routes["/t.txt"] = Route(transcript.encode(), content_type="text/plain")
        http.routes["/page.mp3"] = Route(b"<html><body>Not audio</body></html>", content_type="audio/mpeg")  # fmt: skip
        http.routes["/long.mp3"] = Route(audio, content_type="audio/mpeg")
        http.routes["/feed.xml"] = Route(
            rss(
                item(1, audio=http.url("/page.mp3")),
                item(2, audio=http.url("/long.mp3")),
                item(3, audio=http.url("/none.mp3"), transcript=(http.url("/t.txt"), "text/plain")),
            )
        )

    def faults(self, on: bool) -> None:
        """On: the second feed refuses connections, the LLM endpoint is down, SMTP says 451."""
        if on:
            self.smtp.mailbox.refuse[READER] = "451 4.3.0 try again later"
            if self.late:
                self.late.close()
                self.late = None
                self.refusing = rebind(self.refusing_port)  # None: it refuses unbound
            return
        self.smtp.mailbox.refuse.pop(READER, None)
        sock = self.refusing or rebind(self.refusing_port, seconds=30)
        assert sock is not None, f"port {self.refusing_port} was taken"
        self.late = LoopbackServer(sock=sock)
        self.refusing = None
        late_text = " ".join(["Latency budgets decide architecture."] * 9)
        self.late.routes["/t.txt"] = Route(late_text.encode(), content_type="text/plain")
        transcript = (self.late.url("/t.txt"), "text/plain")
        self.late.routes["/feed.xml"] = Route(
            rss(item(4, audio=self.late.url("/x.mp3"), transcript=transcript), title="Late Show")
        )

    def config(self, folder: Path, *, llm_up: bool) -> Path:
        base_url = self.llm.base_url if llm_up else self.dead_llm
        return write_config(
            folder,
            extraction=f'backend = "openai"\nbase_url = "{base_url}"\nmax_retries = 0\n'
            "timeout_seconds = 5",
            smtp=f'host = "127.0.0.1"\nport = {self.smtp.port}\nsecurity = "none"',
        )


def snapshot(store: Store, state_dir: Path) -> dict[str, Any]:
    """Everything a run decides, with this path's own folder taken out of messages."""

    def clean(text: str | None) -> str:
        return (text or "").replace(str(state_dir), "<state>")

    subscribers = {s.id: s.email for s in store.subscribers.list()}
    return {
        "feeds": {f.url: (f.consecutive_failures, clean(f.last_error)) for f in store.feeds.list()},
        "episodes": {
            e.title: (e.status, e.attempts, clean(e.error)) for e in store.episodes.list()
        },
        "deliveries": sorted(
            (subscribers[d.subscriber_id], d.status, d.attempts)
            for day in store.digests.dates()
            for d in store.digests.deliveries(day)
        ),
    }


def cli_path(config: Path, *, full_disk: Callable[[], Any]) -> None:
    """`digest poll`, `digest process`, `digest send`, as an operator types them."""
    runner = CliRunner()
    for command in ("poll", "process", "send"):
        with full_disk() if command == "process" else _nothing():
            result = runner.invoke(cli, ["--config", str(config), command])
        assert result.exit_code == 0, result.output


def flow_path(config: Path, *, full_disk: Callable[[], Any]) -> None:
    """The digest-pipeline flow, as `digest run` starts it (a full disk for the whole run:
    the feed and database writes stay far below the limit)."""
    from flows.local import local_run
    from flows.pipeline import digest_pipeline

    with local_run(), full_disk():
        digest_pipeline(config_path=str(config))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def run_matrix(world: World, folder: Path, path: Callable[..., None]) -> list[dict[str, Any]]:
    folder.mkdir()
    config = world.config(folder, llm_up=False)
    settings = load_config(str(config))
    with Store(settings.database_url) as store:
        store.feeds.add(world.http.url("/feed.xml"), jobs.utcnow())
        store.feeds.add(world.refusing_feed, jobs.utcnow())
        store.subscribers.add(READER, jobs.utcnow())
        offline = config_from_dict(
            {"storage": {"state_dir": str(settings.state_dir)}}, base_dir=folder
        )
        seed_insights(store, offline, show="Ready Show", scripts=("kimi-k2",))  # sendable
        states = []
        world.faults(on=True)
        path(config, full_disk=lambda: disk_limit(settings.state_dir, len(world.audio)))
        states.append(snapshot(store, settings.state_dir))
        world.faults(on=False)
        config = world.config(folder, llm_up=True)
        path(config, full_disk=_nothing)
        states.append(snapshot(store, settings.state_dir))
    return states


@pytest.fixture
def long_audio(speech: Clips, tmp_path: Path) -> bytes:
    """About 8 MB of real speech: media that cannot fit on the 'full' disk."""
    out = tmp_path / "long.mp3"
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-stream_loop", "3", "-i",
         str(speech["compression"][0]), "-b:a", "320k", str(out)],
        check=True,
    )  # fmt: skip
    return out.read_bytes()


@pytest.mark.slow
def test_the_cli_and_the_flows_leave_the_same_states_through_one_fault_matrix(
    http_server: LoopbackServer,
    smtp_server: SmtpServer,
    fake_openai: FakeOpenAI,
    long_audio: bytes,
    tmp_path: Path,
) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.hello()  # the temporary server starts now, outside the full-disk limit
    world = World(http_server, smtp_server, fake_openai, long_audio)
    try:
        by_cli = run_matrix(world, tmp_path / "cli", cli_path)
        by_flows = run_matrix(world, tmp_path / "flows", flow_path)
    finally:
        if world.late:
            world.late.close()
    assert by_cli == by_flows

    faulty, healed = by_cli
    episodes = faulty["episodes"]
    assert (
        episodes["Episode 1"][:2] == ("failed", 1)
        and "not decodable audio" in episodes["Episode 1"][2]
    )
    assert episodes["Episode 2"][:2] == ("pending", 0), "a full disk is not the episode's fault"
    assert "free disk space" in episodes["Episode 2"][2]
    assert episodes["Episode 3"][:2] == ("transcribed", 0), "waits for the LLM, no attempt used"
    assert "unavailable" in episodes["Episode 3"][2]
    assert faulty["feeds"][world.refusing_feed][0] == 1
    assert faulty["deliveries"] == [(READER, "failed", 1)], "451: kept for the next run"

    episodes = healed["episodes"]
    assert {t: s for t, (s, _, _) in episodes.items() if t != "Episode 1"} == {
        "Episode 2": "extracted", "Episode 3": "extracted", "Episode 4": "extracted",
        "Episode 1: kimi-k2": "extracted",
    }  # fmt: skip
    assert healed["feeds"][world.refusing_feed] == (0, "")
    assert healed["deliveries"] == [(READER, "sent", 2)]
    assert len(smtp_server.mailbox.to(READER)) == 2, "one message per path, none twice"
