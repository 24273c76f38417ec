"""The routes of `digest web` (the contract other clients rely on):

GET/POST /subscribe, GET/POST /confirm/<token>, GET/POST /subscription/<token>,
GET/POST /unsubscribe/<token>, GET /archive, GET /archive/<date>, GET /archive/feed.xml.
Form fields: email, show (feed URLs, repeated), timezone, send_time, csrf_token; on
the preferences page also action (save, pause, resume).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.config import Config
from digest.store import Store
from digest.web.pages import TOKEN, Site

log = logging.getLogger("digest.web")
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


def token_of(request: Request) -> str:
    """The path's token, if it has a token's shape (anything else is no page at all)."""
    token = str(request.path_params["token"])
    if not TOKEN.fullmatch(token):
        raise HTTPException(404, "This link is not valid.")
    return token


def create_app(store: Store, config: Config) -> ASGIApp:
    site = Site(store, config)

    def get(handler: Callable[..., Response]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await run_in_threadpool(handler, *request.path_params.values())

        return endpoint

    def with_form(handler: Callable[..., Response]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            token = token_of(request)
            if request.method == "GET":
                return await run_in_threadpool(handler, request, token, None)
            async with request.form(max_files=0, max_fields=200) as form:
                return await run_in_threadpool(handler, request, token, form)

        return endpoint

    async def unsubscribe(request: Request) -> Response:
        token = token_of(request)
        return await run_in_threadpool(site.unsubscribe, request, token, request.method == "POST")

    async def subscribe(request: Request) -> Response:
        if request.method == "GET":
            return await run_in_threadpool(site.subscribe_form, request)
        async with request.form(max_files=0, max_fields=200) as form:
            return await run_in_threadpool(site.subscribe, request, form)

    async def not_found(request: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", "") or ""
        status = getattr(exc, "status_code", 404)
        if status == 405:
            return site.page("Not allowed", 405, message="That page does not take this request.")
        if status != 404:
            return site.page("Something went wrong", status)
        message = detail if detail and detail != "Not Found" else "There is no such page."
        return site.page("Not found", 404, message=message)

    async def failed(request: Request, exc: Exception) -> Response:
        log.error("web request failed: %s", exc, exc_info=exc)
        return site.page("Something went wrong", 500)

    routes = [
        Route("/", get(site.archive), methods=["GET"]),
        Route("/archive", get(site.archive), methods=["GET"]),
        Route("/archive/feed.xml", get(site.feed), methods=["GET"]),
        Route("/archive/{day}", get(site.day), methods=["GET"]),
        Route("/subscribe", subscribe, methods=["GET", "POST"]),
        Route("/confirm/{token}", with_form(site.confirm), methods=["GET", "POST"]),
        Route("/subscription/{token}", with_form(site.subscription), methods=["GET", "POST"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: not_found, Exception: failed},
    )
    return Guard(app)


class Guard:
    """Outermost layer: security headers on every answer, and no unbounded bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        needs_length = scope["method"] in ("POST", "PUT", "PATCH")
        length = headers.get(b"content-length", b"" if needs_length else b"0")
        if not length.isdigit() or int(length) > MAX_BODY:
            reply = Response("Request too large, or without a length\n", 413)
            return await reply(scope, receive, self._secured(send))
        return await self.app(scope, receive, self._secured(send))

    @staticmethod
    def _secured(send: Send) -> Send:
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
