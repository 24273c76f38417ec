"""The outermost layer of `digest web`: what every request passes before a page sees it.

A page handler never reads from the socket itself. The guard reads a POST's body
whole (it is a sign-up form: well under 1 kB) and hands the handler bytes that are
already in memory, so no handler can be made to hold more than `MAX_BODY`, or to
wait on a client that trickles its form a byte at a time. Bodies are accepted only
in their plainest framing: one `Content-Length`, no `Transfer-Encoding`. A chunked
body could otherwise claim a small length and send megabytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 64 * 1024  # a sign-up form is well under 1 kB; anything bigger is not one
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # pages carry tokens in their URLs
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A request the guard answers itself, with a status and one line of text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


def body_length(scope: Scope) -> int:
    """The body's declared length, if its framing is one we accept; else Refused."""
    lengths: list[bytes] = []
    for name, value in scope.get("headers") or []:
        if name.lower() == b"transfer-encoding":
            raise Refused(411, "Send the form with a Content-Length, not chunked")
        if name.lower() == b"content-length":
            lengths.append(value.strip())
    if len(lengths) > 1:
        raise Refused(400, "More than one Content-Length")
    length = lengths[0] if lengths else b""
    if scope["method"] != "POST":
        if length not in (b"", b"0"):
            raise Refused(400, "This request takes no body")
        return 0
    if not length:
        raise Refused(411, "A form needs a Content-Length")
    if not length.isdigit() or len(length) > 12:  # isdigit on bytes: ASCII digits only
        raise Refused(400, "Content-Length is not a number")
    if int(length) > MAX_BODY:
        raise Refused(413, "Request too large")
    return int(length)


async def read_body(receive: Receive, expected: int, timeout: float) -> bytes:
    """Exactly the declared body, within `timeout` seconds for all of it."""
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    more = True
    while more:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise Refused(408, "The form took too long to arrive")
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except TimeoutError:
            raise Refused(408, "The form took too long to arrive") from None
        if message["type"] == "http.disconnect":
            raise Refused(400, "The client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > min(expected, MAX_BODY):  # more than it declared: not HTTP we speak
            raise Refused(413, "Request too large")
        chunks.append(chunk)
        more = bool(message.get("more_body"))
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the real channel."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


class Guard:
    """Security headers on every answer, and bodies read whole before any page runs."""

    def __init__(self, app: ASGIApp, *, body_timeout: float) -> None:
        self.app = app
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        send = secured(send)
        try:
            expected = body_length(scope)
            if scope["method"] == "POST":
                body = await read_body(receive, expected, self.body_timeout)
                receive = replay(body, receive)
        except Refused as refused:
            reply = PlainTextResponse(
                f"{refused}\n", refused.status, headers={"Connection": "close"}
            )
            return await reply(scope, receive, send)
        return await self.app(scope, receive, send)


def secured(send: Send) -> Callable[[Message], Awaitable[None]]:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            extra = [
                (k.lower().encode(), v.encode())
                for k, v in HEADERS.items()
                if k.lower().encode() not in present
            ]
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return wrapped
