"""The seams hold: an engine, a backend and a channel written outside the library
(`tests/support/stubs.py`) plug in with one registry entry each, are chosen by the
same config values as the built-in ones, and carry an episode from its feed to a
reader with no file in `digest/` edited."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.core.config import load_config
from digest.core.errors import ConfigError
from digest.core.registry import BACKENDS, CHANNELS, ENGINES
from digest.store import Store
from tests.support.feeds import item
from tests.support.httpserver import LoopbackServer, Route
from tests.support.requirements import need
from tests.support.stubs import SCRIPT, StubChannel

DATABASES = ("sqlite",)  # the seams, not the database


@pytest.fixture
def plugged() -> Iterator[None]:
    """The three stubs registered as a plug-in would register them; the reader's
    channel is "email" until readers choose one, so the stub stands in for it."""
    email = CHANNELS.address("email")
    ENGINES.register("stub", "tests.support.stubs:StubEngine")  # by address: the worker imports it
    BACKENDS.register("stub", "tests.support.stubs:StubBackend")
    CHANNELS.register("email", StubChannel)
    StubChannel.received.clear()
    try:
        yield
    finally:
        ENGINES.unregister("stub")
        BACKENDS.unregister("stub")
        CHANNELS.register("email", email)


def tone(path: Path, seconds: int = 6) -> bytes:
    """Real MP3 audio (the worker decodes it as it would any episode's)."""
    need("ffmpeg")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-b:a", "32k", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def write_config(folder: Path, engine: str, backend: str) -> Path:
    config = folder / "digest.toml"
    config.write_text(
        f'[storage]\nstate_dir = "{folder / "state"}"\n'
        "[feeds]\nallow_private_addresses = true\n"
        '[digest]\nsend_time = "00:00"\n[web]\nbase_url = "http://digest.example.org"\n'
        f'[transcription]\nbackend = "{engine}"\nmodel = "stub-model"\n'
        f'[extraction]\nbackend = "{backend}"\n'
    )
    return config


def test_a_stub_engine_backend_and_channel_carry_an_episode_to_a_reader(
    plugged: None, http_server: LoopbackServer, tmp_path: Path
) -> None:
    http_server.routes["/ep.mp3"] = Route(tone(tmp_path / "tone.mp3"), content_type="audio/mpeg")
    http_server.routes["/feed.xml"] = Route(
        (
            "<rss version='2.0'><channel><title>Plug-in Show</title>"
            + item(1, audio=http_server.url("/ep.mp3"))
            + "</channel></rss>"
        ).encode()
    )
    config = write_config(tmp_path, engine="stub", backend="stub")
    runner = CliRunner()

    def digest(*args: str) -> str:
        result = runner.invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    digest("init")
    digest("feeds", "add", http_server.url("/feed.xml"))
    digest("subscribers", "add", "reader@example.org")
    digest("poll")
    digest("process")
    digest("send")

    with Store(load_config(str(config)).database_url) as store:
        [episode] = store.episodes.list()
        assert episode.status == "extracted", episode.error
        stored = store.transcripts.get(episode.id)
        assert stored is not None
        transcript = stored.transcript
        assert transcript.engine == "stub" and transcript.text == " ".join(SCRIPT)
        insights = store.insights.for_episode(episode.id)
    assert [i.prompt_version for i in insights] == ["stub-v1"]
    assert insights[0].quote == SCRIPT[2], "the stub backend's one proposal, grounded"
    assert insights[0].start_seconds == pytest.approx(4.0, abs=0.5), "timed by the stub engine"
    [(reader, _date, delivery_id, texts)] = StubChannel.received
    assert reader == "reader@example.org" and delivery_id == "stub-1"
    assert texts == (insights[0].text,)
    assert not (tmp_path / "state" / "outbox").exists(), "the email channel was not used"

    digest("send")
    assert len(StubChannel.received) == 1, "the ledger holds for a plugged-in channel too"


def test_config_takes_its_choices_from_the_registries(plugged: None, tmp_path: Path) -> None:
    assert load_config(str(write_config(tmp_path, "stub", "stub"))).transcription.backend == "stub"
    ENGINES.unregister("stub")
    with pytest.raises(ConfigError) as refused:
        load_config(str(write_config(tmp_path, "stub", "extractive")))
    message = str(refused.value)
    assert "[transcription] backend" in message and "faster-whisper" in message
