"""The guarded HTTP client against a real loopback server."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from digest.core import net
from digest.core.errors import BlockedURL, FetchError, TooLarge
from digest.core.net import GuardedClient, check_public_host, check_scheme, read_capped
from tests.support.httpserver import LoopbackServer, Route


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/feed.xml",
        "javascript:alert(1)",
        "gopher://x/",
        "http:///nohost",
    ],
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    with pytest.raises(BlockedURL, match="only http:// and https://"):
        check_scheme(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/feed",
        "http://localhost:8080/feed",
        "http://10.1.2.3/feed",
        "http://192.168.0.10/feed",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed",
        "http://[::ffff:127.0.0.1]/feed",
        "http://100.64.0.1/feed",
    ],
)
def test_private_loopback_and_link_local_targets_are_refused(url: str) -> None:
    with pytest.raises(BlockedURL, match="allow_private_addresses"):
        check_public_host(url)


def test_a_refused_url_is_never_requested(http_server: LoopbackServer) -> None:
    http_server.routes["/feed"] = Route(b"<rss/>")
    with GuardedClient(allow_private=False, timeout=5) as client, pytest.raises(BlockedURL):  # noqa: SIM117
        with client.stream(http_server.url("/feed")):
            pass
    assert http_server.count("/feed") == 0


def test_redirects_are_followed_and_sent_with_our_user_agent(http_server: LoopbackServer) -> None:
    http_server.routes["/a"] = Route(redirect="/b")
    http_server.routes["/b"] = Route(redirect=http_server.url("/c"))
    http_server.routes["/c"] = Route(b"done")
    with (
        GuardedClient(allow_private=True, timeout=5) as client,
        client.stream(http_server.url("/a")) as r,
    ):
        assert r.read() == b"done"
        assert str(r.url) == http_server.url("/c")
    assert http_server.seen("/c")[0].headers["user-agent"].startswith("podcast-digest/")


def test_every_redirect_hop_is_checked(
    http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Treat this server's 127.0.0.1 as "public" so that the first hop passes, and
    # 127.0.0.2 as the private target an attacker's redirect points at.
    monkeypatch.setattr(net, "_is_public", lambda address: address == "127.0.0.1")
    http_server.routes["/feed"] = Route(redirect=f"http://127.0.0.2:{http_server.port}/internal")
    with (
        GuardedClient(allow_private=False, timeout=5) as client,
        pytest.raises(BlockedURL, match=r"127\.0\.0\.2"),
        client.stream(http_server.url("/feed")),
    ):
        pass
    assert http_server.count("/feed") == 1
    assert http_server.count("/internal") == 0


def test_redirect_to_a_file_url_is_refused(http_server: LoopbackServer) -> None:
    http_server.routes["/feed"] = Route(redirect="file:///etc/passwd")
    with GuardedClient(allow_private=True, timeout=5) as client, pytest.raises(BlockedURL):  # noqa: SIM117
        with client.stream(http_server.url("/feed")):
            pass


def test_redirect_loops_and_chains_end_with_an_error(http_server: LoopbackServer) -> None:
    http_server.routes["/loop1"] = Route(redirect="/loop2")
    http_server.routes["/loop2"] = Route(redirect="/loop1")
    for i in range(12):
        http_server.routes[f"/hop{i}"] = Route(redirect=f"/hop{i + 1}")
    with GuardedClient(allow_private=True, timeout=5, max_redirects=10) as client:
        with (
            pytest.raises(FetchError, match="redirect loop"),
            client.stream(http_server.url("/loop1")),
        ):
            pass
        with (
            pytest.raises(FetchError, match="more than 10 redirects"),
            client.stream(http_server.url("/hop0")),
        ):
            pass


PUBLIC = "93.184.215.14"  # a global address; nothing answers it on this closed network


class Resolver:
    """A resolver we control, in place of the system's for one name: it answers each
    lookup of `name` with the next list of addresses (DNS rebinding when the first is
    public and a later one private); every other name resolves as usual."""

    def __init__(self, name: str, *answers: list[str]) -> None:
        self.name, self.answers, self.lookups = name, list(answers), 0
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        addresses = self.answers[min(self.lookups, len(self.answers) - 1)]
        self.lookups += 1
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))
            for address in addresses
        ]


def test_dns_rebinding_never_reaches_the_private_address(
    http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name answers a public address to the first lookup and this loopback server
    to every later one: whatever the client does, the loopback server gets nothing."""
    http_server.routes["/secret"] = Route(b"internal data")
    resolver = Resolver("rebind.example", [PUBLIC], ["127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    url = f"http://rebind.example:{http_server.port}/secret"
    with GuardedClient(allow_private=False, timeout=2) as client, pytest.raises(FetchError):  # noqa: SIM117
        with client.stream(url):
            pass
    assert resolver.lookups >= 1
    assert http_server.requests == [], "the private server received no request"


def test_a_redirect_to_a_rebinding_name_is_vetted_too(
    http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(net, "_is_public", lambda address: address in (PUBLIC, "127.0.0.1"))
    resolver = Resolver("rebind.example", ["127.0.0.2"])  # private, after a public first hop
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    http_server.routes["/feed"] = Route(redirect=f"http://rebind.example:{http_server.port}/in")
    with (
        GuardedClient(allow_private=False, timeout=2) as client,
        pytest.raises(BlockedURL, match=r"127\.0\.0\.2"),
        client.stream(http_server.url("/feed")),
    ):
        pass
    assert [r.path for r in http_server.requests] == ["/feed"]


def test_a_name_with_a_private_address_among_public_ones_is_refused(
    http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = Resolver("mixed.example", [PUBLIC, "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    http_server.routes["/x"] = Route(b"internal")
    with (
        GuardedClient(allow_private=False, timeout=2) as client,
        pytest.raises(BlockedURL, match=r"127\.0\.0\.1"),
        client.stream(f"http://mixed.example:{http_server.port}/x"),
    ):
        pass
    assert http_server.requests == []


def test_a_body_without_a_length_is_cut_at_the_cap_as_it_streams(
    http_server: LoopbackServer,
) -> None:
    """Chunked, so no Content-Length announces the size: the running count stops it."""
    http_server.routes["/endless"] = Route(b"z" * 65536, chunked=True, repeat=2000)  # 131 MB
    with (
        GuardedClient(allow_private=True, timeout=10) as client,
        client.stream(http_server.url("/endless")) as r,
        pytest.raises(TooLarge, match="more than the 1,000,000-byte limit"),
    ):
        assert "content-length" not in r.headers
        read_capped(r, max_bytes=1_000_000, deadline=time.monotonic() + 10, url="u")
    assert http_server.bytes_sent < 8_000_000, "it stopped reading: at most socket buffers more"


def test_size_cap_stops_reading(http_server: LoopbackServer) -> None:
    http_server.routes["/big"] = Route(b"x" * 100_000)
    with (
        GuardedClient(allow_private=True, timeout=5) as client,
        client.stream(http_server.url("/big")) as r,
        pytest.raises(FetchError, match="1,000-byte limit"),
    ):
        read_capped(r, max_bytes=1000, deadline=time.monotonic() + 5, url="u")


def test_a_trickling_server_cannot_outlast_the_deadline(http_server: LoopbackServer) -> None:
    http_server.routes["/slow"] = Route(b"y" * 1000, trickle=0.05)  # 50 s if read to the end
    started = time.monotonic()
    with (
        GuardedClient(allow_private=True, timeout=5) as client,
        client.stream(http_server.url("/slow")) as r,
        pytest.raises(FetchError, match="at the deadline"),
    ):
        read_capped(r, max_bytes=10_000, deadline=time.monotonic() + 1, url="u")
    assert time.monotonic() - started < 5


def test_a_server_that_never_answers_times_out(http_server: LoopbackServer) -> None:
    http_server.routes["/hang"] = Route(b"late", delay=3)
    with (
        GuardedClient(allow_private=True, timeout=0.5) as client,
        pytest.raises(FetchError, match="timed out"),
        client.stream(http_server.url("/hang")),
    ):
        pass
