"""`digest web`'s app served by a real uvicorn on a loopback port, in a thread."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from digest.config import Config
from digest.store import Store
from digest.web import create_app


def loopback_socket() -> socket.socket:
    """A bound port, known before the config that names it (`[web] base_url`) is made."""
    # IPPROTO_TCP named, as uvicorn's own sockets have it: asyncio sets TCP_NODELAY only
    # then, and without it every keep-alive answer waits 40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve_web(store: Store, config: Config, sock: socket.socket | None = None) -> Iterator[str]:
    """Yield the base URL of the running site; stop it afterwards."""
    sock = sock or loopback_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, config), log_level="warning", lifespan="off")
    )
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


def form_token(client: httpx.Client, path: str = "/subscribe") -> str:
    """GET a page with a form (the client keeps its cookie) and return the form's token."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "every form carries a CSRF token"
    return match.group(1)
