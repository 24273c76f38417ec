"""A webhook receiver on loopback, written as a careful receiver would be: it verifies
the signature with the endpoint's secret, refuses a stale or tampered request, and
notes a delivery id it has seen before. Its answers can be scripted per request."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from digest.delivery.channels.webhook import verify
from tests.support.ports import bound_socket


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    valid: bool  # the signature checked out with the secret
    duplicate: bool  # a delivery id seen before

    @property
    def data(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str = ""
    answers: list[tuple[int, float]] = field(default_factory=list)  # (status, delay) per request
    redirect_to: str = ""
    received: list[Received] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length", "0"))
        body = request.rfile.read(length)
        headers = {k.lower(): v for k, v in request.headers.items()}
        valid = verify(
            self.secret,
            body,
            headers.get("x-digest-timestamp", ""),
            headers.get("x-digest-signature", ""),
        )
        delivery = headers.get("x-digest-delivery", "")
        duplicate = delivery in self.seen
        self.seen.add(delivery)
        self.received.append(Received(request.path, headers, body, valid, duplicate))
        status, delay = self.answers.pop(0) if self.answers else (200, 0.0)
        if self.redirect_to:
            status = 302
        elif not valid:
            status = 401
        time.sleep(delay)
        request.send_response(status)
        if self.redirect_to:
            request.send_header("Location", self.redirect_to)
        request.send_header("Content-Length", "2")
        request.end_headers()
        request.wfile.write(b"ok")


@contextmanager
def receiving(secret: str = "") -> Iterator[Receiver]:
    receiver = Receiver(secret)
    sock = bound_socket()
    receiver.port = sock.getsockname()[1]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            # The sender may give up waiting (a hanging receiver's test).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                receiver.handle(self)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_activate()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
