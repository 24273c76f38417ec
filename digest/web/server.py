"""`digest web` under uvicorn, with the limits a public site needs against slow clients.

uvicorn closes idle keep-alive connections and can cap connections, but it waits
for a request's headers for as long as the client cares to trickle them (a
"slowloris" holds a connection that way for hours). The protocol below gives every
request `header_timeout` seconds from its first byte (or from the connection's
opening) to finish its headers; the guard (`digest.web.guard`) then gives the body
its own deadline. A reverse proxy in front should still add its own limits
(deploy/README.md says which).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from digest.core.settings import WebSettings


def header_deadline(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol, closing connections whose headers come too slowly."""

    class HeaderDeadline(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self.conn.their_state is h11.IDLE:
                self._arm()  # the first bytes of the next request on this connection
            super().data_received(data)
            if self._deadline is not None and self.conn.their_state is not h11.IDLE:
                self._deadline.cancel()  # the headers are in
                self._deadline = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(seconds, self._expire)

        def _expire(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


def server_config(app: Any, settings: WebSettings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's settings for `digest web`: the one place they are chosen."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": header_deadline(settings.header_timeout_seconds),
        "timeout_keep_alive": settings.keepalive_timeout_seconds,
        "limit_concurrency": settings.max_connections,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
        "access_log": False,  # request paths carry subscribers' tokens
        "log_level": "warning",
        "server_header": False,
        "lifespan": "off",
        **overrides,
    }
    return uvicorn.Config(app, **options)
