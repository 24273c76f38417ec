"""`digest web`'s app served by a real uvicorn on a loopback port, in a thread."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn

from digest.core.config import Config
from digest.core.models import Feed
from digest.store import Store
from digest.store.schema import signups
from digest.web import create_app
from digest.web.server import server_config
from tests.support.ports import bound_socket
from tests.support.smtpserver import Mailbox


@contextmanager
def serve_web(store: Store, config: Config, sock: socket.socket | None = None) -> Iterator[str]:
    """Yield the base URL of the running site; stop it afterwards."""
    sock = sock or bound_socket()
    port = sock.getsockname()[1]
    # The settings `digest web` runs with (header deadline, connection cap, ...).
    server = uvicorn.Server(server_config(create_app(store, config), config.web))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


CONFIRM = re.compile(r"http://[^/\s]+/confirm/([A-Za-z0-9_-]+)")


@dataclass
class SignupSite:
    """A running site with its store, config and the mailbox its mail lands in."""

    store: Store
    config: Config
    base: str
    mailbox: Mailbox
    feeds: dict[str, Feed] = field(default_factory=dict)

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False)

    def sign_up(
        self, client: httpx.Client, email: str, *shows: str, **extra: str
    ) -> httpx.Response:
        data: dict[str, Any] = {
            "email": email,
            "show": list(shows),
            "timezone": "Europe/Berlin",
            "send_time": "06:30",
            "csrf_token": form_token(client),
            **extra,
        }
        return client.post("/subscribe", data=data)

    def confirm_links(self, address: str) -> list[str]:
        links = []
        for message in self.mailbox.to(address):
            body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            links += CONFIRM.findall(body)
        return links

    def signup_rows(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(signups)).scalar_one())


def form_token(client: httpx.Client, path: str = "/subscribe") -> str:
    """GET a page with a form (the client keeps its cookie) and return the form's token."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "every form carries a CSRF token"
    return match.group(1)


@dataclass
class Raw:
    """An HTTP answer as the socket gave it (0: the server closed without answering)."""

    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(base: str, request: bytes, *, timeout: float = 10.0) -> Raw:
    """Send bytes as they are (no client library tidies them) and read one answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> Raw:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            chunk = b""
        if not chunk:
            return Raw(0, {}, data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Raw(int(lines[0].split()[1]), headers, body)
