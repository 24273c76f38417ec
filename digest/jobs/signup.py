"""Self-serve sign-up with double opt-in: a request, a confirmation email, a confirmation.

The request never says whether the address is known: every accepted request gets
the same answer page and one email. A new, pending, unsubscribed or bounced address
gets a confirmation link; an address that already gets the digest gets its
preferences link instead, so a sign-up form in a stranger's hands can neither
change a reader's choices nor tell who reads. Two limits keep the form from being
used to flood someone's inbox or the outbox: confirmation emails per inbox per day,
sign-ups per client network per hour. Both are counted and recorded in one
transaction (`SubscriberRepo.request_signup`), so simultaneous requests cannot
slip past them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from digest.core.config import Config
from digest.core.errors import DigestError, InvalidInput
from digest.core.models import WEEKDAYS, ChannelChoice, Feed, Subscriber
from digest.delivery.channels.email import mail_transport
from digest.delivery.message import Outgoing, Transport, new_message_id, notice
from digest.edition.render import environment
from digest.jobs import reader_channels
from digest.store import Store
from digest.store.subscriber_repo import Limits, Preferences, Signup, SignupRequest

log = logging.getLogger("digest.signup")
Outcome = Literal["mailed", "limited-address", "limited-client", "mail-failed"]
KEEP_SIGNUPS = timedelta(days=7)  # longer than any limit's window or link's life


@dataclass(frozen=True)
class SignupResult:
    outcome: Outcome
    error: str | None = None


def shows_from_urls(urls: Sequence[str], feeds: Sequence[Feed]) -> tuple[int, ...] | None:
    """Feed ids for the ticked `show` values (feed URLs); none ticked means all shows."""
    by_url = {f.url: f.id for f in feeds}
    unknown = [u for u in urls if u not in by_url]
    if unknown:
        raise InvalidInput(f"{unknown[0][:200]!r} is not one of the shows this digest follows")
    return tuple(sorted({by_url[u] for u in urls})) or None


def shows_phrase(shows: tuple[int, ...] | None, feeds: Sequence[Feed]) -> str:
    if not shows:
        return "every show it follows"
    titles = [f.title or f.url for f in feeds if f.id in shows]
    return ", ".join(titles) or "the shows you chose"


def sign_up(
    store: Store,
    config: Config,
    email: str,
    prefs: Preferences,
    *,
    client: str,
    now: datetime,
    transport: Transport | None = None,
    channels: ChannelChoice | None = None,
) -> SignupResult:
    """Record a valid request and email its link, within the limits."""
    web = config.web
    limits = Limits(
        client=client,
        per_client=web.signups_per_client,
        client_since=now - timedelta(hours=1),
        per_inbox=web.confirmations_per_address,
        inbox_since=now - timedelta(days=1),
        forget_before=now - KEEP_SIGNUPS,
    )
    expires = now + timedelta(hours=web.confirm_hours)
    request = store.subscribers.request_signup(email, prefs, limits, now, expires, channels)
    if request.outcome != "mail":
        return SignupResult(request.outcome)
    mail = transport or mail_transport(config, "confirmations")
    try:
        mail.send(_message(store, config, email, prefs, request))
    except (DigestError, OSError) as exc:  # SMTP refused or unreachable, a full disk
        log.error("confirmation email not sent: %s", exc)
        store.subscribers.release_mail(request.token)  # it does not count toward the limit
        return SignupResult("mail-failed", str(exc))
    finally:
        mail.close()
    return SignupResult("mailed")


def _message(
    store: Store, config: Config, email: str, prefs: Preferences, request: SignupRequest
) -> Outgoing:
    base = config.web.base_url.rstrip("/")
    feeds = store.feeds.list()
    known = request.known
    if known is not None and known.subscribed:  # already reading: their own page, no change
        subject = "You already get Podcast Digest"
        body = (
            environment()
            .get_template("already.txt.j2")
            .render(
                email=known.email,
                when=describe_schedule(known, config),
                shows=shows_phrase(known.shows, feeds),
                manage_url=f"{base}/subscription/{known.unsubscribe_token}",
            )
        )
    else:
        subject = "Confirm your Podcast Digest subscription"
        body = (
            environment()
            .get_template("confirm.txt.j2")
            .render(
                confirm_url=f"{base}/confirm/{request.token}",
                hours=config.web.confirm_hours,
                shows=shows_phrase(prefs.shows, feeds),
            )
        )
    sender = config.digest.sender
    return notice(sender, email, subject, body, new_message_id(sender))


def describe_schedule(subscriber: Subscriber, config: Config) -> str:
    """`daily at 07:00 (Europe/Berlin)` or `every Monday at ...`, the reader's or the
    default time and zone."""
    default = config.digest
    zone = subscriber.timezone or default.timezone
    every = f"every {WEEKDAYS[subscriber.weekday].capitalize()}" if subscriber.weekly else "daily"
    return f"{every} at {subscriber.send_time or default.send_time} ({zone})"


def usable(signup: Signup | None, now: datetime) -> Signup | None:
    """The sign-up if its link may still be opened: known and not expired, used or not
    (a used link only shows where the subscription stands)."""
    if signup is None or signup.expires_at < now:
        return None
    return signup


def confirm(store: Store, signup: Signup, now: datetime) -> Subscriber:
    subscriber = store.subscribers.confirm(signup, now)
    if signup.channels is not None and subscriber.status == "active":
        # idempotent: a second tab confirming the same link finds them already made
        reader_channels.apply_choice(store, subscriber.id, signup.channels, now)
    log.info("sign-up confirmed: subscriber %d is %s", subscriber.id, subscriber.status)
    return subscriber
