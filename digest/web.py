"""`digest web`: one-click unsubscribe (RFC 8058), a manage page, the public archive.

Deliberately tiny (the standard library's HTTP server) and deliberately narrow: a
token unsubscribes only its own subscriber, a GET never changes anything (mail
scanners follow links), nothing redirects to a URL taken from the request, and no
page lists subscribers.
"""

from __future__ import annotations

import logging
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from digest.config import Config
from digest.jobs.preview import frozen_items
from digest.render import render_email
from digest.store import Store
from digest.templating import templates_root

log = logging.getLogger("digest.web")
TOKEN = r"([A-Za-z0-9_-]{16,64})"
ROUTES = {
    "unsubscribe": re.compile(rf"^/unsubscribe/{TOKEN}$"),
    "subscription": re.compile(rf"^/subscription/{TOKEN}$"),
    "day": re.compile(r"^/archive/(\d{4}-\d{2}-\d{2})$"),
}


class WebApp:
    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.env = Environment(
            loader=FileSystemLoader(templates_root() / "web"),
            undefined=StrictUndefined,
            autoescape=select_autoescape(["html", "j2"]),
        )

    def page(self, title: str, **parts: Any) -> str:
        values = {"message": "", "action": "", "button": "", "links": [], "body": "", **parts}
        return self.env.get_template("page.html.j2").render(title=title, **values)

    def handle(self, method: str, path: str) -> tuple[int, str]:
        path = path.split("?", 1)[0]
        if path in ("/", "/archive"):
            dates = self.store.digests.dates()
            links = [(f"/archive/{d}", d) for d in dates]
            return 200, self.page("Past digests", links=links, message="" if dates else "None yet.")
        if match := ROUTES["day"].match(path):
            return self._day(match.group(1))
        for name in ("unsubscribe", "subscription"):
            if match := ROUTES[name].match(path):
                return self._subscriber(name, method, match.group(1))
        return 404, self.page("Not found")

    def _day(self, day: str) -> tuple[int, str]:
        items = frozen_items(self.store, day)
        if items is None:
            return 404, self.page("Not found", message=f"There is no digest for {day}.")
        _, html = render_email(day, items, archive_url="/archive").personalise(
            "/archive", "/archive"
        )
        return 200, html

    def _subscriber(self, name: str, method: str, token: str) -> tuple[int, str]:
        subscriber = self.store.subscribers.by_token(token)
        if subscriber is None:
            return 404, self.page("Link not valid", message="This link is not valid any more.")
        if method == "POST" and name == "unsubscribe":
            if subscriber.status == "active":
                self.store.subscribers.set_status(subscriber.id, "unsubscribed")
                log.info("unsubscribed subscriber %d by one-click", subscriber.id)
            return 200, self.page(
                "Unsubscribed", message=f"{subscriber.email} will get no more digests."
            )
        if subscriber.status != "active":
            return 200, self.page(
                "Not subscribed", message=f"{subscriber.email} is not subscribed."
            )
        default = self.config.digest
        zone = subscriber.timezone or default.timezone
        when = f"{subscriber.send_time or default.send_time} ({zone})"
        return 200, self.page(
            "Unsubscribe?" if name == "unsubscribe" else "Your subscription",
            message=f"{subscriber.email} gets the daily digest at {when}.",
            action=f"/unsubscribe/{token}",
            button="Unsubscribe",
        )


def make_server(app: WebApp, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "podcast-digest"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug(fmt, *args)  # never log paths at info: they carry tokens

        def _reply(self, method: str) -> None:
            if method == "POST":
                length = min(int(self.headers.get("Content-Length") or 0), 4096)
                self.rfile.read(length)
            try:
                status, body = app.handle(method, self.path)
            except Exception:
                log.exception("web request failed")
                status, body = 500, app.page("Something went wrong")
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
            )
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

    return ThreadingHTTPServer((host, port), Handler)
