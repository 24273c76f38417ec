"""A real HTTP server on 127.0.0.1 for tests: scripted routes, ETags, redirects, slow bodies.

It counts every request and keeps its headers, so tests can assert what the client
really sent (If-None-Match, User-Agent) and that a refused URL was never requested.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml"
    etag: str | None = None  # answer 304 when If-None-Match matches
    redirect: str | None = None  # answer 301 to this location
    delay: float = 0.0  # seconds to wait before answering
    trickle: float = 0.0  # seconds between single bytes of the body
    headers: dict[str, str] = field(default_factory=dict)
    ranges: bool = False  # honour `Range: bytes=N-` with 206 Partial Content
    truncate_once: int | None = None  # first full GET: send this many bytes, then hang up
    repeat: int = 1  # the body this many times over, streamed (a 500 MB "feed" in 1 MB)
    drop_first: int = 0  # hang up on this many requests without a byte of answer
    status_first: tuple[int, int] | None = None  # (status, count): answer it this many times
    chunked: bool = False  # no Content-Length: the body in chunks, its size unknown upfront


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class LoopbackServer:
    def __init__(self, sock: socket.socket | None = None) -> None:
        """On a new ephemeral port, or on `sock` (bound, not listening) when given."""
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.bytes_sent = 0  # response bodies, for benchmarks that report transfer
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._serve(self)

        class Server(ThreadingHTTPServer):
            # The default backlog of 5 drops SYNs when many clients connect at once,
            # and each drop costs the client a one-second retransmit.
            request_queue_size = 128

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients hanging up mid-body is what several tests are about

        self.closed = threading.Event()
        if sock is None:
            self.httpd = Server(("127.0.0.1", 0), Handler)
        else:  # the socket a caller held (refusing connections) until now
            self.httpd = Server(sock.getsockname(), Handler, bind_and_activate=False)
            self.httpd.socket.close()
            self.httpd.socket = sock
            self.httpd.server_activate()
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.closed.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(Seen(h.path, {k.lower(): v for k, v in h.headers.items()}))
        route = self.routes.get(h.path)
        if route is None:
            return self._reply(h, 404, b"not found", "text/plain")
        if route.delay:
            time.sleep(route.delay)
        if route.drop_first:
            route.drop_first -= 1
            h.close_connection = True
            h.connection.shutdown(2)  # a reset-like hang-up: no status line at all
            return None
        if route.status_first and route.status_first[1]:
            status, left = route.status_first
            route.status_first = (status, left - 1)
            return self._reply(h, status, b"try again later", "text/plain")
        if route.redirect:
            h.send_response(301)
            h.send_header("Location", route.redirect)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        if route.etag and h.headers.get("If-None-Match") == route.etag:
            h.send_response(304)
            h.send_header("ETag", route.etag)
            h.end_headers()
            return None
        headers = dict(route.headers)
        if route.etag:
            headers["ETag"] = route.etag
        wanted = h.headers.get("Range", "")
        if route.ranges and wanted.startswith("bytes="):
            start = int(wanted[6:].split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(route.body) - 1}/{len(route.body)}"
            return self._reply(h, 206, route.body[start:], route.content_type, headers)
        if route.truncate_once is not None:
            cut, route.truncate_once = route.truncate_once, None
            h.send_response(200)
            h.send_header("Content-Type", route.content_type)
            h.send_header("Content-Length", str(len(route.body)))
            h.send_header("Accept-Ranges", "bytes")
            h.end_headers()
            h.wfile.write(route.body[:cut])
            h.wfile.flush()
            h.close_connection = True
            return None
        if route.repeat > 1 or route.chunked:
            return self._stream_repeated(h, route)
        with self._lock:
            self.bytes_sent += len(route.body)
        return self._reply(
            h, route.status, route.body, route.content_type, headers, route.trickle, self.closed
        )

    def _stream_repeated(self, h: BaseHTTPRequestHandler, route: Route) -> None:
        try:
            h.send_response(route.status)
            h.send_header("Content-Type", route.content_type)
            if route.chunked:
                h.send_header("Transfer-Encoding", "chunked")
            else:
                h.send_header("Content-Length", str(len(route.body) * route.repeat))
            h.end_headers()
            for _ in range(route.repeat):
                if route.chunked:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(route.body), route.body))
                else:
                    h.wfile.write(route.body)
                with self._lock:
                    self.bytes_sent += len(route.body)
            if route.chunked:
                h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading at its cap, as it should

    @staticmethod
    def _reply(
        h: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        trickle: float = 0.0,
        closed: threading.Event | None = None,
    ) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                h.send_header(name, value)
            h.end_headers()
            if not trickle:
                h.wfile.write(body)
                return
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                if closed is not None and closed.wait(trickle):
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should on a trickling server
