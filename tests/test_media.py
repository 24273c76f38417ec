"""Enclosure downloads and audio checks, against a real loopback server and real MP3s."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from digest.core.errors import BlockedURL, FetchError, MediaError, TooLarge
from digest.core.net import GuardedClient
from digest.transcripts.audio import SAMPLE_RATE, iter_windows, probe, quietest_cut
from digest.transcripts.media import check_audio, download
from tests.support.httpserver import LoopbackServer, Route

Clips = dict[str, tuple[Path, str]]


@pytest.fixture
def client() -> GuardedClient:
    return GuardedClient(allow_private=True, timeout=5)


def fetch(client: GuardedClient, url: str, target: Path, **kw: object) -> Path:
    return download(client, url, target, max_bytes=kw.pop("max_bytes", 10**8), timeout=10, **kw)  # type: ignore[arg-type]


def test_download_follows_redirects_and_lands_atomically(
    client: GuardedClient, http_server: LoopbackServer, speech: Clips, tmp_path: Path
) -> None:
    audio = speech["matrix"][0].read_bytes()
    http_server.routes["/ep.mp3"] = Route(audio, content_type="audio/mpeg")
    http_server.routes["/track"] = Route(redirect="/cdn")
    http_server.routes["/cdn"] = Route(redirect="/ep.mp3")
    seen: list[int] = []
    path = fetch(
        client, http_server.url("/track"), tmp_path / "ep.mp3", progress=lambda n, t: seen.append(n)
    )
    assert path.read_bytes() == audio
    assert seen[-1] == len(audio)
    assert not list(tmp_path.glob("*.part"))
    assert check_audio(path, label="ep", max_seconds=3600) == pytest.approx(19.5, abs=2)


def test_truncated_download_is_resumed_with_range(
    client: GuardedClient, http_server: LoopbackServer, speech: Clips, tmp_path: Path
) -> None:
    audio = speech["matrix"][0].read_bytes()
    http_server.routes["/ep.mp3"] = Route(
        audio, content_type="audio/mpeg", ranges=True, truncate_once=10_000
    )
    path = fetch(client, http_server.url("/ep.mp3"), tmp_path / "ep.mp3")
    assert path.read_bytes() == audio
    first, second = http_server.seen("/ep.mp3")
    assert "range" not in first.headers
    assert second.headers["range"] == "bytes=10000-"


def test_truncated_download_restarts_when_the_server_ignores_range(
    client: GuardedClient, http_server: LoopbackServer, speech: Clips, tmp_path: Path
) -> None:
    audio = speech["matrix"][0].read_bytes()
    http_server.routes["/ep.mp3"] = Route(audio, content_type="audio/mpeg", truncate_once=5_000)
    assert fetch(client, http_server.url("/ep.mp3"), tmp_path / "ep.mp3").read_bytes() == audio
    assert http_server.count("/ep.mp3") == 2


def test_an_error_page_declared_as_html_is_refused_at_download(
    client: GuardedClient, http_server: LoopbackServer, tmp_path: Path
) -> None:
    http_server.routes["/ep.mp3"] = Route(b"<html>Not found</html>", content_type="text/html")
    with pytest.raises(MediaError, match="text/html, not audio"):
        fetch(client, http_server.url("/ep.mp3"), tmp_path / "ep.mp3")
    assert not list(tmp_path.iterdir()), "nothing half-written is left behind"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!DOCTYPE html><html><body>Episode not found</body></html>", "not decodable audio"),
        (random.Random(7).randbytes(64_000), "not decodable audio"),
        (b"", "empty"),
    ],
    ids=["html-as-audio/mpeg", "random-bytes", "zero-length"],
)
def test_non_audio_served_as_audio_fails_the_decode_probe(
    client: GuardedClient, http_server: LoopbackServer, tmp_path: Path, body: bytes, message: str
) -> None:
    http_server.routes["/ep.mp3"] = Route(body, content_type="audio/mpeg")
    path = fetch(client, http_server.url("/ep.mp3"), tmp_path / "ep.mp3")
    with pytest.raises(MediaError, match=message) as info:
        check_audio(path, label=http_server.url("/ep.mp3"), max_seconds=3600)
    assert http_server.url("/ep.mp3") in str(info.value)


def test_size_cap_and_duration_cap(
    client: GuardedClient, http_server: LoopbackServer, speech: Clips, tmp_path: Path
) -> None:
    audio = speech["matrix"][0].read_bytes()
    http_server.routes["/ep.mp3"] = Route(audio, content_type="audio/mpeg")
    with pytest.raises(TooLarge, match="1,000-byte limit"):
        fetch(client, http_server.url("/ep.mp3"), tmp_path / "a.mp3", max_bytes=1000)
    path = fetch(client, http_server.url("/ep.mp3"), tmp_path / "b.mp3")
    with pytest.raises(MediaError, match="max_duration_hours"):
        check_audio(path, label="ep", max_seconds=5)


def test_enclosures_on_private_addresses_are_refused(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    http_server.routes["/ep.mp3"] = Route(b"x", content_type="audio/mpeg")
    with GuardedClient(allow_private=False, timeout=5) as guarded, pytest.raises(BlockedURL):
        fetch(guarded, http_server.url("/ep.mp3"), tmp_path / "ep.mp3")
    assert http_server.count("/ep.mp3") == 0


def test_local_enclosures_only_beside_a_local_feed(client: GuardedClient, tmp_path: Path) -> None:
    (tmp_path / "show").mkdir()
    (tmp_path / "show" / "feed.xml").write_text("<rss/>")
    (tmp_path / "show" / "ep.mp3").write_bytes(b"abc")
    (tmp_path / "secret.txt").write_text("no")
    feed = (tmp_path / "show" / "feed.xml").as_uri()
    ok = fetch(client, (tmp_path / "show" / "ep.mp3").as_uri(), tmp_path / "a.mp3", feed_url=feed)
    assert ok.read_bytes() == b"abc"
    with pytest.raises(BlockedURL, match="local feed"):
        fetch(client, (tmp_path / "secret.txt").as_uri(), tmp_path / "b.mp3", feed_url=feed)
    with pytest.raises(BlockedURL, match="local feed"):
        fetch(
            client,
            (tmp_path / "show" / "ep.mp3").as_uri(),
            tmp_path / "c.mp3",
            feed_url="https://x/feed",
        )


def test_unreachable_host_is_a_fetch_error(client: GuardedClient, tmp_path: Path) -> None:
    with pytest.raises(FetchError):
        download(
            client,
            "http://127.0.0.1:1/ep.mp3",
            tmp_path / "ep.mp3",
            max_bytes=100,
            timeout=2,
            attempts=2,
        )


def test_windows_cover_the_audio_exactly_once_and_cut_at_pauses(speech: Clips) -> None:
    path = speech["compression"][0]
    duration = probe(path)
    windows = list(iter_windows(path, 10.0))
    assert len(windows) >= 3
    expected_offset = 0.0
    for n, (offset, pcm) in enumerate(windows, start=1):
        assert offset == pytest.approx(expected_offset)
        # The last may take a tail under half a window rather than leave it alone.
        assert len(pcm) <= (15 if n == len(windows) else 10) * SAMPLE_RATE
        expected_offset += len(pcm) / SAMPLE_RATE
    assert expected_offset == pytest.approx(duration, abs=0.1)


def test_quietest_cut_finds_the_gap() -> None:
    tone = np.sin(np.linspace(0, 2000, 10 * SAMPLE_RATE)).astype(np.float32)
    tone[7 * SAMPLE_RATE : int(7.4 * SAMPLE_RATE)] = 0.0  # a 0.4 s pause at 7 s
    cut = quietest_cut(tone, 9 * SAMPLE_RATE, 5 * SAMPLE_RATE)
    assert 7 * SAMPLE_RATE <= cut <= int(7.4 * SAMPLE_RATE)
