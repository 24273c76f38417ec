"""A reader's own pages: `/subscription/<token>` (preferences, pause, resume) and
`/unsubscribe/<token>` (RFC 8058 one-click). The token is the reader's secret; a
token that is not a reader's is a plain 404 that reveals nothing."""

from __future__ import annotations

import logging

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from digest.core.clock import utcnow
from digest.core.config import Config
from digest.core.errors import InvalidInput
from digest.core.models import Endpoint, Subscriber
from digest.delivery.channels.feed import feed_url
from digest.jobs import reader_channels
from digest.jobs.signup import describe_schedule
from digest.store.subscriber_repo import Preferences
from digest.web.site import Site, field

log = logging.getLogger("digest.web")


def describe(subscriber: Subscriber, config: Config) -> str:
    """Where the subscription stands, in one sentence."""
    email = subscriber.email
    if subscriber.status == "paused":
        return f"{email} is paused: no digests until you resume."
    if subscriber.status == "active":
        return f"{email} gets the digest {describe_schedule(subscriber, config)}."
    if subscriber.status == "pending":
        return f"{email} is waiting for its confirmation link to be used."
    return f"{email} is not subscribed."


class ReaderPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def subscriber(self, token: str) -> Subscriber:
        found = self.site.store.subscribers.by_token(token)
        if found is None:
            raise HTTPException(404, "This link is not valid any more.")
        return found

    def preferences(self, request: Request, token: str, form: FormData | None) -> Response:
        site = self.site
        subscriber = self.subscriber(token)
        if not subscriber.subscribed:
            return site.page(
                "Not subscribed",
                message=describe(subscriber, site.config),
                links=[("/subscribe", "Subscribe again")],
            )
        message, error, status = "", "", 200
        if form is not None:
            if not site.csrf_ok(request, form):
                return site.refused_form()
            message, error = self.change(subscriber, form)
            status = 400 if error else 200
            subscriber = self.subscriber(token)
        prefs = Preferences.of(subscriber)
        endpoints = site.store.endpoints.of([subscriber.id])[subscriber.id]
        return site.form_page(
            request,
            "Your subscription",
            "subscription",
            status,
            token=token,
            message=message or ("" if error else describe(subscriber, site.config)),
            error=error,
            paused=subscriber.status == "paused",
            channels=[self.shown(e) for e in endpoints if e.kind != "email" or e.disabled],
            **site.choices(prefs, reader_channels.current_choice(endpoints)),
        )

    def shown(self, endpoint: Endpoint) -> dict[str, str]:
        """One channel as the preferences page lists it: its link, its secret."""
        if endpoint.kind == "feed":
            link = feed_url(self.site.config.web.base_url, endpoint)
            return {"label": "Your private feed", "link": link, "secret": "", "disabled": ""}
        label = (
            f"Email to {endpoint.target}"
            if endpoint.kind == "email"
            else (f"Webhook {endpoint.target} ({endpoint.format})")
        )
        secret = endpoint.secret if endpoint.kind == "webhook" else ""
        return {"label": label, "link": "", "secret": secret, "disabled": endpoint.disabled or ""}

    def change(self, subscriber: Subscriber, form: FormData) -> tuple[str, str]:
        """Apply one preferences form; (message, error)."""
        repo = self.site.store.subscribers
        try:
            action = field(form, "action")
            if action == "pause":
                repo.set_status(subscriber.id, "paused")
                return "Paused: no digests until you resume.", ""
            if action == "resume":
                repo.set_status(subscriber.id, "active")
                return "Resumed: the digest comes again from the next send.", ""
            if action != "save":
                raise InvalidInput("the form did not say what to do")
            prefs = self.site.preferences(form)
            channels = self.site.channel_choice(form)  # both read before anything is written
            repo.set_preferences(subscriber.id, prefs)
            if channels is not None:
                reader_channels.apply_choice(self.site.store, subscriber.id, channels, utcnow())
        except InvalidInput as exc:
            return "", f"Nothing was changed: {exc}"
        return "Saved. The changes apply from the next digest.", ""

    def unsubscribe(self, request: Request, token: str, post: bool) -> Response:
        """RFC 8058 one-click: a POST with the token is all it takes (mail clients send no
        form token), and only that subscriber is touched; a GET only asks."""
        site = self.site
        subscriber = self.subscriber(token)
        if post:
            if subscriber.subscribed:
                site.store.subscribers.set_status(subscriber.id, "unsubscribed")
                log.info("unsubscribed subscriber %d by one-click", subscriber.id)
            return site.page(
                "Unsubscribed", message=f"{subscriber.email} will get no more digests."
            )
        if not subscriber.subscribed:
            return site.page("Not subscribed", message=describe(subscriber, site.config))
        return site.form_page(
            request,
            "Unsubscribe?",
            "page",
            message=f"Stop sending the digest to {subscriber.email}?",
            action=f"/unsubscribe/{token}",
            button="Unsubscribe",
        )
