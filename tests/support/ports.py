"""Ports for loopback servers, without the race of "find a free port, bind it later".

A port looked up and closed can be taken by another process (the other test worker
starts servers too) before ours binds it. So: servers in this process are handed the
bound socket itself; a port meant to refuse connections stays bound, never listening,
for as long as it is needed; and servers in a child that must bind themselves
(PostgreSQL, Prefect) retry with another port if theirs was taken.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager


def bound_socket() -> socket.socket:
    """A TCP socket bound to an ephemeral loopback port, not yet listening."""
    # IPPROTO_TCP named, as uvicorn's own sockets have it: asyncio sets TCP_NODELAY only
    # then, and without it every keep-alive answer waits 40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def unused_port() -> int:
    """A port free right now, for a child process that binds it itself: the caller must
    retry with another if the child finds it taken."""
    with bound_socket() as sock:
        return port_of(sock)


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port that refuses connections (bound, never listening) while the block runs:
    nothing else can start listening on it meanwhile."""
    with bound_socket() as sock:
        yield port_of(sock)


def rebind(port: int, seconds: float = 5.0) -> socket.socket | None:
    """`port` bound again, not listening, after the server on it stopped: it refuses
    connections again, and no other process can start listening there. Connections
    the server accepted may hold the port a moment longer; None if they outlast
    `seconds` (the port then refuses anyway, unless something else takes it)."""
    deadline = time.monotonic() + seconds
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
