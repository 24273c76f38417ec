"""The pages of `digest web`: each handler takes what the request carried (form,
token), does its work through the store or `digest.jobs.signup`, and returns a
rendered page. It runs in a worker thread (the database is blocking I/O) and never
redirects.
"""

from __future__ import annotations

import logging
import re
import time
import zoneinfo
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest.config import Config
from digest.errors import InvalidInput
from digest.jobs import signup
from digest.jobs.clock import utcnow
from digest.jobs.preview import frozen_items
from digest.models import Subscriber
from digest.render import render_email
from digest.store import Store
from digest.store.subscriber_repo import Preferences
from digest.subscribers import check_send_time, check_subscriber_timezone, normalise_email
from digest.templating import templates_root
from digest.web import csrf
from digest.web.atom import atom_feed

log = logging.getLogger("digest.web")
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
FEED_ENTRIES = 30
BAD_FORM = (
    "This form has expired or did not come from this site, so nothing was changed. "
    "Reload the page and try again."
)


class Site:
    def __init__(self, store: Store, config: Config) -> None:
        self.store, self.config = store, config
        self.key = csrf.load_key(config.secrets.web_secret, config.state_dir)
        self.env = Environment(
            loader=FileSystemLoader(templates_root() / "web"),
            undefined=StrictUndefined,
            autoescape=select_autoescape(["html", "j2"]),
        )
        self.zones = sorted(zoneinfo.available_timezones())

    # ------------------------------------------------------------ rendering
    def page(self, title: str, status: int = 200, template: str = "page", **parts: Any) -> Response:
        values = {
            "message": "",
            "error": "",
            "action": "",
            "button": "",
            "links": [],
            "body": "",
            "csrf_token": "",
            **parts,
        }
        html = self.env.get_template(f"{template}.html.j2").render(title=title, **values)
        return HTMLResponse(html, status_code=status)

    def form_page(
        self, request: Request, title: str, template: str, status: int = 200, **parts: Any
    ) -> Response:
        """A page with a form: its CSRF token, bound to the browser's cookie."""
        nonce = request.cookies.get(csrf.COOKIE) or ""
        fresh = not TOKEN.fullmatch(nonce)
        nonce = csrf.new_nonce() if fresh else nonce
        response = self.page(
            title,
            status,
            template,
            csrf_token=csrf.token_for(self.key, nonce, time.time()),
            **parts,
        )
        if fresh:
            response.set_cookie(
                csrf.COOKIE,
                nonce,
                max_age=7 * 24 * 3600,
                httponly=True,
                samesite="lax",
                secure=self.config.web.base_url.startswith("https:"),
            )
        return response

    def choices(self, prefs: Preferences) -> dict[str, Any]:
        default = self.config.digest
        return {
            "feeds": self.store.feeds.list(),
            "chosen": prefs.shows or (),
            "zones": self.zones,
            "timezone": prefs.timezone or default.timezone,
            "send_time": prefs.send_time or default.send_time,
        }

    def preferences(self, form: FormData) -> Preferences:
        """The reader's choices from a form; InvalidInput says what is wrong."""
        shows = signup.shows_from_urls(
            [str(v) for v in form.getlist("show")], self.store.feeds.list()
        )
        default = self.config.digest  # a field left out or empty: the default
        zone = check_subscriber_timezone(str(form.get("timezone") or default.timezone))
        send_time = check_send_time(str(form.get("send_time") or default.send_time))
        return Preferences(
            shows,
            None if zone == default.timezone else zone,
            None if send_time == default.send_time else send_time,
        )

    def csrf_ok(self, request: Request, form: FormData) -> bool:
        token = form.get(csrf.FIELD)
        return csrf.check(
            self.key,
            request.cookies.get(csrf.COOKIE),
            token if isinstance(token, str) else None,
            time.time(),
        )

    # ------------------------------------------------------------ sign-up
    def subscribe_form(self, request: Request) -> Response:
        return self.form_page(
            request, "Subscribe", "subscribe", email="", **self.choices(Preferences())
        )

    def subscribe(self, request: Request, form: FormData) -> Response:
        if not self.csrf_ok(request, form):
            return self.page(
                "Please try again", 403, error=BAD_FORM, links=[("/subscribe", "Sign up")]
            )
        typed = str(form.get("email") or "")[:320]
        if form.get("website"):  # the hidden field only robots fill in
            log.info("sign-up dropped: the honeypot field was filled in")
            return self.check_inbox(typed)
        try:
            address = normalise_email(typed)
            prefs = self.preferences(form)
        except InvalidInput as exc:
            return self.form_page(
                request,
                "Subscribe",
                "subscribe",
                400,
                error=str(exc),
                email=typed,
                **self.choices(Preferences()),
            )
        client = csrf.client_key(self.key, request.client.host if request.client else "")
        result = signup.sign_up(
            self.store, self.config, address, prefs, client=client, now=utcnow()
        )
        if result.outcome == "limited-client":
            return self.page(
                "Too many sign-ups",
                429,
                error="Too many sign-ups have come from your network in the last hour. "
                "Please try again later.",
            )
        if result.outcome == "limited-address":
            return self.page(
                "Check your inbox",
                429,
                error=f"We have already sent {address} the most confirmation emails we send "
                "in a day. Look for them (also in the spam folder), or try again tomorrow.",
            )
        if result.outcome == "mail-failed":
            return self.page(
                "Please try again",
                503,
                error="The confirmation email could not be sent just now. "
                "Please try again in a few minutes.",
            )
        return self.check_inbox(address)

    def check_inbox(self, address: str) -> Response:
        hours = self.config.web.confirm_hours
        return self.page(
            "Check your inbox",
            message=f"If {address} can receive email, a confirmation link is on its way. "
            f"Open it within {hours} hours to start your subscription.",
        )

    def confirm(self, request: Request, token: str, form: FormData | None) -> Response:
        now = utcnow()
        found = signup.usable(self.store.subscribers.signup(token), now)
        if found is None:
            return self.page(
                "Link not valid",
                404,
                message="This confirmation link is not valid or has expired. "
                "Sign up again to get a new one.",
                links=[("/subscribe", "Sign up")],
            )
        if form is None:
            return self.form_page(
                request,
                "Confirm your subscription",
                "confirm",
                token=token,
                message=f"Press Confirm to send the daily digest to {found.email}.",
            )
        if not self.csrf_ok(request, form):
            return self.page("Please try again", 403, error=BAD_FORM)
        subscriber = signup.confirm(self.store, found, now)
        return self.page(
            "You are subscribed",
            message=f"{subscriber.email} gets the daily digest from the next send on.",
            links=[(f"/subscription/{subscriber.unsubscribe_token}", "Your preferences")],
        )

    # ------------------------------------------------------------ subscribers
    def subscriber(self, token: str) -> Subscriber:
        found = self.store.subscribers.by_token(token)
        if found is None:
            raise HTTPException(404, "This link is not valid any more.")
        return found

    def subscription(self, request: Request, token: str, form: FormData | None) -> Response:
        subscriber = self.subscriber(token)
        if not subscriber.subscribed:
            return self.page(
                "Not subscribed",
                message=f"{subscriber.email} is not subscribed.",
                links=[("/subscribe", "Subscribe again")],
            )
        message, error, status = "", "", 200
        if form is not None:
            if not self.csrf_ok(request, form):
                return self.page("Please try again", 403, error=BAD_FORM)
            message, error = self.change(subscriber, form)
            status = 400 if error else 200
            subscriber = self.subscriber(token)
        prefs = Preferences(subscriber.shows, subscriber.timezone, subscriber.send_time)
        if not message and not error:
            message = self.describe(subscriber)
        return self.form_page(
            request,
            "Your subscription",
            "subscription",
            status,
            token=token,
            message=message,
            error=error,
            paused=subscriber.status == "paused",
            **self.choices(prefs),
        )

    def change(self, subscriber: Subscriber, form: FormData) -> tuple[str, str]:
        """Apply one preferences form; (message, error)."""
        action = form.get("action")
        repo = self.store.subscribers
        if action == "pause":
            repo.set_status(subscriber.id, "paused")
            return "Paused: no digests until you resume.", ""
        if action == "resume":
            repo.set_status(subscriber.id, "active")
            return "Resumed: the digest comes again from the next send.", ""
        if action != "save":
            return "", "Nothing was changed: the form did not say what to do."
        try:
            repo.set_preferences(subscriber.id, self.preferences(form))
        except InvalidInput as exc:
            return "", f"Nothing was changed: {exc}"
        return "Saved. The changes apply from the next digest.", ""

    def describe(self, subscriber: Subscriber) -> str:
        default = self.config.digest
        zone = subscriber.timezone or default.timezone
        when = f"{subscriber.send_time or default.send_time} ({zone})"
        if subscriber.status == "paused":
            return f"{subscriber.email} is paused: no digests until you resume."
        return f"{subscriber.email} gets the daily digest at {when}."

    def unsubscribe(self, request: Request, token: str, post: bool) -> Response:
        """RFC 8058 one-click: a POST with the token is all it takes (mail clients send no
        form token), and only that subscriber is touched; a GET only asks."""
        subscriber = self.subscriber(token)
        if post:
            if subscriber.subscribed:
                self.store.subscribers.set_status(subscriber.id, "unsubscribed")
                log.info("unsubscribed subscriber %d by one-click", subscriber.id)
            return self.page(
                "Unsubscribed", message=f"{subscriber.email} will get no more digests."
            )
        if not subscriber.subscribed:
            return self.page("Not subscribed", message=f"{subscriber.email} is not subscribed.")
        return self.form_page(
            request,
            "Unsubscribe?",
            "page",
            message=f"Stop sending the daily digest to {subscriber.email}?",
            action=f"/unsubscribe/{token}",
            button="Unsubscribe",
        )

    # ------------------------------------------------------------ archive
    def archive(self) -> Response:
        dates = self.store.digests.dates()
        return self.page(
            "Past digests",
            links=[(f"/archive/{d}", d) for d in dates],
            message="" if dates else "None yet.",
        )

    def day(self, day: str) -> Response:
        items = frozen_items(self.store, day) if DATE.fullmatch(day) else None
        if items is None:
            raise HTTPException(404, f"There is no digest for {day}.")
        content = render_email(day, items, archive_url="/archive", feed_url="/archive/feed.xml")
        _, html = content.personalise("/archive", "/archive")
        return HTMLResponse(html)

    def feed(self) -> Response:
        editions = [
            (frozen, self.store.insights.by_ids(frozen.insight_ids))
            for frozen in self.store.digests.editions(FEED_ENTRIES)
        ]
        body = atom_feed(self.config.web.base_url, editions, utcnow())
        return Response(
            body,
            media_type="application/atom+xml; charset=utf-8",
            headers={"Cache-Control": "public, max-age=900"},
        )
