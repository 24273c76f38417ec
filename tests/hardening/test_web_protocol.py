"""`digest web` at the HTTP level, as an attacker speaks it: raw bytes on a socket to a real
uvicorn, because a client library refuses to send most of these. Each request is
refused at once with a 4xx, nothing is changed, no answer is a 3xx or a 500, and the
server holds no more than its cap."""

from __future__ import annotations

import logging
import socket
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from digest.jobs import utcnow
from digest.store import Store
from digest.web.guard import MAX_BODY
from tests.support.web import form_token, raw_request, read_answer, serve_web

DATABASES = ("sqlite",)  # HTTP, not the database: one backend is enough

pytestmark = pytest.mark.hardening
HOSTILE_HOST = "evil.example"


@pytest.fixture
def site(make_config: Any, caplog: pytest.LogCaptureFixture) -> Iterator[tuple[Store, str]]:
    config = make_config(
        web={"header_timeout_seconds": 1.0, "body_timeout_seconds": 1.0, "max_connections": 8}
    )
    caplog.set_level(logging.ERROR, logger="digest.web")
    with Store(config.database_url) as store, serve_web(store, config) as base:
        yield store, base
    failures = [r for r in caplog.records if r.name == "digest.web"]
    assert not failures, "no request may make the site fail (a 500)"


def request(method: str, path: str, *headers: str, body: bytes = b"", host: str = "x") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *headers, "", ""]
    return "\r\n".join(lines).encode() + body


def signups(store: Store) -> int:
    return len(store.subscribers.list())


def test_a_chunked_body_is_refused_before_a_byte_of_it_is_read(site: Any) -> None:
    store, base = site
    host, port = base.removeprefix("http://").split(":")
    tracemalloc.start()
    try:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = request(
                "POST",
                "/subscribe",
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Length: 10",
                "Transfer-Encoding: chunked",
            )
            sock.sendall(head)
            answer = read_answer(sock)  # before any of the body is sent
            sent = 0
            chunk = b"100000\r\n" + b"e" * 0x100000 + b"\r\n"
            with pytest.raises(OSError):  # the server hung up: the rest goes nowhere
                for _ in range(64):
                    sock.sendall(chunk)
                    sent += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 411 and answer.headers.get("connection") == "close"
    assert sent < 64 * len(chunk), "the server stopped reading"
    assert peak < 4 * 1024 * 1024, f"the server held {peak:,} bytes for a refused body"
    assert signups(store) == 0


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (("Transfer-Encoding: chunked",), 411),  # chunked only
        (("Transfer-Encoding: gzip, chunked", "Content-Length: 5"), 411),
        (("Content-Length: 5", "Content-Length: 6"), 400),  # two lengths
        ((), 411),  # no length at all
        (("Content-Length: -1",), 400),
        (("Content-Length: ５",), 400),  # a full-width digit
        ((f"Content-Length: {MAX_BODY + 1}",), 413),  # over the cap: not read
        (("Content-Length: 99999999999999999999",), 400),
    ],
)
def test_bodies_in_any_framing_but_one_plain_length_are_refused_at_once(
    site: Any, headers: tuple[str, ...], status: int
) -> None:
    store, base = site
    head = request(
        "POST", "/subscribe", "Content-Type: application/x-www-form-urlencoded", *headers
    )
    answer = raw_request(base, head, timeout=5)
    # uvicorn's parser refuses some framings itself (400) before the app sees them.
    assert answer.status == status or (status != 413 and answer.status == 400), answer
    assert signups(store) == 0


def test_a_form_that_trickles_in_is_cut_off_at_the_body_deadline(site: Any) -> None:
    store, base = site
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            request(
                "POST",
                "/subscribe",
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Length: 200",
            )
        )
        sock.sendall(b"email=a")  # then nothing more
        answer = read_answer(sock)
    assert answer.status == 408 and time.monotonic() - started < 5
    assert signups(store) == 0


def test_headers_that_never_finish_lose_their_connection(site: Any) -> None:
    _, base = site
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /subscribe HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        for _ in range(20):  # a byte every 0.2 s: never a whole set of headers
            try:
                sock.sendall(b"a")
                time.sleep(0.2)
            except OSError:
                break
        answer = read_answer(sock)
    assert answer.status == 0, "closed without an answer"
    assert time.monotonic() - started < 4, "at [web] header_timeout_seconds (1 s here)"


def test_idle_connections_beyond_the_cap_get_a_503_not_a_hang(site: Any) -> None:
    _, base = site
    host, port = base.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(8)]
    try:
        time.sleep(0.2)  # let the server take them all
        answer = raw_request(base, request("GET", "/archive"), timeout=5)
        assert answer.status == 503
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while raw_request(base, request("GET", "/archive")).status != 200:
        assert time.monotonic() < deadline, "serving again once the idle ones are gone"
        time.sleep(0.1)


@pytest.mark.parametrize(
    "path",
    [
        "/archive/",
        "/archive//",
        "/subscribe/",
        "/subscription/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/",
        "/unsubscribe/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/",
        "//evil.example/archive",
        "/archive/feed.xml/",
        "http://evil.example/archive/",
        "/%2e%2e/archive",
        "/archive/..%2f..%2fsubscribe",
    ],
)
def test_no_path_is_ever_redirected_and_nothing_is_built_from_host(site: Any, path: str) -> None:
    _, base = site
    answer = raw_request(base, request("GET", path, host=HOSTILE_HOST))
    assert answer.status in (400, 404), answer
    assert "location" not in answer.headers
    assert HOSTILE_HOST.encode() not in answer.body


def test_a_real_readers_token_in_a_trailing_slash_path_goes_nowhere(site: Any) -> None:
    store, base = site
    reader = store.subscribers.add("r@example.org", utcnow())
    for path in (
        f"/subscription/{reader.unsubscribe_token}/",
        f"/unsubscribe/{reader.unsubscribe_token}/",
    ):
        answer = raw_request(base, request("GET", path, host=HOSTILE_HOST))
        assert answer.status == 404 and "location" not in answer.headers
        assert reader.unsubscribe_token.encode() not in answer.body


def test_head_with_a_form_body_changes_nothing(site: Any) -> None:
    store, base = site
    reader = store.subscribers.add("h@example.org", utcnow())
    path = f"/subscription/{reader.unsubscribe_token}"
    with httpx.Client(base_url=base) as client:
        token = form_token(client, path)
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    body = f"action=pause&csrf_token={token}".encode()
    for method, target in (("HEAD", path), ("HEAD", f"/unsubscribe/{reader.unsubscribe_token}")):
        answer = raw_request(
            base,
            request(
                method,
                target,
                "Content-Type: application/x-www-form-urlencoded",
                f"Content-Length: {len(body)}",
                f"Cookie: {cookie}",
                body=body,
            ),
        )
        assert answer.status == 400 and answer.body == b"", "a HEAD never carries a body"
    assert store.subscribers.get("h@example.org").status == "active"
    plain = raw_request(base, request("HEAD", path))
    assert plain.status == 200 and plain.body == b"", "HEAD is answered as GET, headers only"
    assert store.subscribers.get("h@example.org").status == "active"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"])
def test_methods_other_than_get_head_and_post_are_not_allowed(site: Any, method: str) -> None:
    store, base = site
    reader = store.subscribers.add("m@example.org", utcnow())
    for path in ("/subscribe", f"/unsubscribe/{reader.unsubscribe_token}"):
        answer = raw_request(base, request(method, path, "Content-Length: 0"))
        assert answer.status in (400, 405), (method, path, answer.status)
    assert store.subscribers.get("m@example.org").status == "active"


def test_a_get_with_a_body_is_refused(site: Any) -> None:
    store, base = site
    reader = store.subscribers.add("g@example.org", utcnow())
    body = b"action=pause"
    answer = raw_request(
        base,
        request(
            "GET",
            f"/subscription/{reader.unsubscribe_token}",
            f"Content-Length: {len(body)}",
            body=body,
        ),
    )
    assert answer.status == 400
    assert store.subscribers.get("g@example.org").status == "active"
