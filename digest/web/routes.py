"""The routes of `digest web` (the contract other clients rely on):

GET/POST /subscribe, GET/POST /confirm/<token>, GET/POST /subscription/<token>,
GET/POST /unsubscribe/<token>, GET /archive, GET /archive/<date>, GET /archive/feed.xml,
GET /feed/<token>.xml (a reader's private feed: RSS 2.0 of their editions), and its
files GET /feed/<token>/<edition>.mp3|.json|.vtt (the edition read aloud, chapters,
transcript).
Form fields: email, show (feed URLs, repeated), timezone, send_time, topics (words,
"quoted phrases", -word; at most 500 characters), topics_only (a checkbox: "1"),
cadence (daily, weekly), weekday (monday ... sunday: a weekly reader's day),
channel (email, webhook, feed; repeated), webhook_url, webhook_format (json, slack),
channels_shown ("1": the form offered channels, so what is not ticked goes; a form
without it leaves the reader's channels as they are), csrf_token; on the preferences
page also action (save, pause, resume).

Only POST changes anything; HEAD is answered as GET is; other methods get 405.
Paths are matched exactly: `/archive/` is not `/archive` and is answered 404, never
redirected (a redirect would be built from the request's Host header).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from digest.core.addresses import TOKEN
from digest.core.config import Config
from digest.store import Store
from digest.web.archive_pages import ArchivePages
from digest.web.feed_pages import FeedPages
from digest.web.guard import Guard
from digest.web.reader_pages import ReaderPages
from digest.web.signup_pages import SignupPages
from digest.web.site import Site

log = logging.getLogger("digest.web")
Handler = Callable[[Request], Awaitable[Response]]
FormHandler = Callable[[Request, str, FormData | None], Response]


def token_of(request: Request) -> str:
    """The path's token, if it has a token's shape (anything else is no page at all)."""
    token = str(request.path_params["token"])
    if not TOKEN.fullmatch(token):
        raise HTTPException(404, "This link is not valid.")
    return token


async def read_form(request: Request) -> FormData:
    """The POSTed form (the guard has already read the body, within its cap; files are
    refused, so nothing is spooled to disk)."""
    try:
        return await request.form(max_files=0, max_fields=200, max_part_size=64 * 1024)
    except (MultiPartException, ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"This form could not be read ({exc}).") from exc


def create_app(store: Store, config: Config) -> ASGIApp:
    site = Site(store, config)
    signup, reader, archive = SignupPages(site), ReaderPages(site), ArchivePages(site)
    feeds = FeedPages(site)

    async def private_feed(request: Request) -> Response:
        return await run_in_threadpool(feeds.feed, token_of(request))

    async def feed_file(request: Request) -> Response:
        name = str(request.path_params["name"])
        return await run_in_threadpool(feeds.media, token_of(request), name)

    def plain(handler: Callable[..., Response]) -> Handler:
        async def endpoint(request: Request) -> Response:
            return await run_in_threadpool(handler, *request.path_params.values())

        return endpoint

    def with_token(handler: FormHandler) -> Handler:
        async def endpoint(request: Request) -> Response:
            token = token_of(request)
            if request.method != "POST":  # GET, or HEAD: shown, never acted on
                return await run_in_threadpool(handler, request, token, None)
            form = await read_form(request)
            return await run_in_threadpool(handler, request, token, form)

        return endpoint

    async def unsubscribe(request: Request) -> Response:
        token = token_of(request)
        post = request.method == "POST"
        return await run_in_threadpool(reader.unsubscribe, request, token, post)

    async def subscribe(request: Request) -> Response:
        if request.method != "POST":
            return await run_in_threadpool(signup.form, request)
        form = await read_form(request)
        return await run_in_threadpool(signup.submit, request, form)

    async def not_found(request: Request, exc: Exception) -> Response:
        detail = getattr(exc, "detail", "") or ""
        status = getattr(exc, "status_code", 404)
        if status == 405:
            return site.page("Not allowed", 405, message="That page does not take this request.")
        if status == 400:
            return site.page("Please try again", 400, error=detail or "Bad request.")
        if status != 404:
            return site.page("Something went wrong", status)
        message = detail if detail and detail != "Not Found" else "There is no such page."
        return site.page("Not found", 404, message=message)

    async def failed(request: Request, exc: Exception) -> Response:
        log.error("web request failed: %s", exc, exc_info=exc)
        return site.page("Something went wrong", 500)

    routes = [
        Route("/", plain(archive.index), methods=["GET"]),
        Route("/archive", plain(archive.index), methods=["GET"]),
        Route("/archive/feed.xml", plain(archive.feed), methods=["GET"]),
        Route("/archive/{day}", plain(archive.day), methods=["GET"]),
        Route("/subscribe", subscribe, methods=["GET", "POST"]),
        Route("/confirm/{token}", with_token(signup.confirm), methods=["GET", "POST"]),
        Route("/subscription/{token}", with_token(reader.preferences), methods=["GET", "POST"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/feed/{token}.xml", private_feed, methods=["GET"]),
        Route("/feed/{token}/{name}", feed_file, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: not_found, Exception: failed},
    )
    app.router.redirect_slashes = False  # never a 3xx; `/archive/` is simply not a page
    return Guard(app, body_timeout=config.web.body_timeout_seconds)
