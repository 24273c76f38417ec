"""Signing up: `/subscribe` (the form, then "check your inbox") and `/confirm/<token>`."""

from __future__ import annotations

import logging

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from digest.core.addresses import normalise_email
from digest.core.clock import utcnow
from digest.core.errors import InvalidInput
from digest.core.models import ChannelChoice, Subscriber
from digest.jobs import signup
from digest.store.subscriber_repo import Preferences
from digest.web import csrf
from digest.web.reader_pages import describe
from digest.web.site import Site, field

log = logging.getLogger("digest.web")


class SignupPages:
    def __init__(self, site: Site) -> None:
        self.site = site

    def form(self, request: Request) -> Response:
        site = self.site
        return site.form_page(
            request, "Subscribe", "subscribe", email="", **site.choices(Preferences())
        )

    def submit(self, request: Request, form: FormData) -> Response:
        site = self.site
        if not site.csrf_ok(request, form):
            return site.refused_form(links=[("/subscribe", "Sign up")])
        typed = ""
        try:
            typed = field(form, "email", limit=320)
            honeypot = field(form, "website")
            address = normalise_email(typed)
            prefs = site.preferences(form)
            channels = site.channel_choice(form)
        except InvalidInput as exc:
            return site.form_page(
                request,
                "Subscribe",
                "subscribe",
                400,
                error=str(exc),
                email=typed,
                **site.choices(Preferences()),
            )
        if honeypot:  # the hidden field only robots fill in
            log.info("sign-up dropped: the honeypot field was filled in")
            return self.check_inbox(address)
        peer = request.client.host if request.client else ""
        result = signup.sign_up(
            site.store,
            site.config,
            address,
            prefs,
            client=csrf.client_key(site.key, peer),
            now=utcnow(),
            channels=channels,
        )
        if result.outcome == "limited-client":
            return site.page(
                "Too many sign-ups",
                429,
                error="Too many sign-ups have come from your network in the last hour. "
                "Please try again later.",
            )
        if result.outcome == "limited-address":
            return site.page(
                "Check your inbox",
                429,
                error=f"We have already sent {address} the most confirmation emails we send "
                "in a day. Look for them (also in the spam folder), or try again tomorrow.",
            )
        if result.outcome == "mail-failed":
            return site.page(
                "Please try again",
                503,
                error="The confirmation email could not be sent just now. "
                "Please try again in a few minutes.",
            )
        return self.check_inbox(address)

    def check_inbox(self, address: str) -> Response:
        hours = self.site.config.web.confirm_hours
        return self.site.page(
            "Check your inbox",
            message=f"If {address} can receive email, a message with a link is on its way. "
            f"Open it within {hours} hours.",
        )

    def confirm(self, request: Request, token: str, form: FormData | None) -> Response:
        """GET shows a button (link scanners confirm nothing); POST uses the link once.
        A used link shows where the subscription stands now, and changes nothing."""
        site = self.site
        now = utcnow()
        found = signup.usable(site.store.subscribers.signup(token), now)
        current = site.store.subscribers.get_or_none(found.email) if found else None
        if found is None or (found.confirmed_at is not None and current is None):
            return site.page(
                "Link not valid",
                404,
                message="This confirmation link is not valid or has expired. "
                "Sign up again to get a new one.",
                links=[("/subscribe", "Sign up")],
            )
        if found.confirmed_at is not None and current is not None:
            return self.used(current)
        if form is None:
            return site.form_page(
                request,
                "Confirm your subscription",
                "confirm",
                token=token,
                message=f"Press Confirm to send the daily digest to {found.email}.",
            )
        if not site.csrf_ok(request, form):
            return site.refused_form()
        subscriber = signup.confirm(site.store, found, now)
        if subscriber.status != "active":  # another tab used the link a moment ago
            return self.used(subscriber)
        where = "the digest"
        if found.channels is not None and found.channels != ChannelChoice():
            where = (
                "the digest where you chose (your private feed link and webhook secret "
                "are on your preferences page)"
            )
        return site.page(
            "You are subscribed",
            message=f"{subscriber.email} gets {where} from the next send on.",
            links=[(f"/subscription/{subscriber.unsubscribe_token}", "Your preferences")],
        )

    def used(self, subscriber: Subscriber) -> Response:
        site = self.site
        links = [(f"/subscription/{subscriber.unsubscribe_token}", "Your preferences")]
        if not subscriber.subscribed:
            links = [("/subscribe", "Sign up again")]
        return site.page(
            "Link already used",
            message="This confirmation link was already used. " + describe(subscriber, site.config),
            links=links,
        )
