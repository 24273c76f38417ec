"""Self-serve sign-up with double opt-in: a request, a confirmation email, a confirmation.

The request never says whether the address is known (every accepted request gets the
same answer and the same email: confirming an active address applies the new
choices), so the form cannot be used to find out who reads the digest. Two limits
keep it from being used to flood someone's inbox or the outbox: confirmation emails
per address per day, sign-ups per client per hour.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from digest.config import Config
from digest.deliver import OutboxTransport, Transport, new_message_id, notice
from digest.errors import DigestError, InvalidInput
from digest.models import Feed, Subscriber
from digest.render import environment
from digest.smtp import SmtpTransport
from digest.store import Store
from digest.store.subscriber_repo import Preferences, Signup

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
        raise InvalidInput(f"{unknown[0]!r} is not one of the shows this digest follows")
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
) -> SignupResult:
    """Record a valid request and email its confirmation link, within the limits."""
    limits = config.web
    if store.subscribers.signups_since(client, now - timedelta(hours=1)) >= (
        limits.signups_per_client
    ):
        return SignupResult("limited-client")  # read only: a flood costs no writes
    store.subscribers.forget_signups(now - KEEP_SIGNUPS)
    expires = now + timedelta(hours=limits.confirm_hours)
    token = store.subscribers.record_signup(  # counts for the client, mailed or not
        email, prefs, client=client, mailed=False, now=now, expires_at=expires
    )
    if store.subscribers.mails_since(email, now - timedelta(days=1)) >= (
        limits.confirmations_per_address  # counts mailed requests only: not this one yet
    ):
        return SignupResult("limited-address")
    store.subscribers.pending(email, prefs, now)
    body = (
        environment()
        .get_template("confirm.txt.j2")
        .render(
            confirm_url=f"{config.web.base_url.rstrip('/')}/confirm/{token}",
            hours=limits.confirm_hours,
            shows=shows_phrase(prefs.shows, store.feeds.list()),
        )
    )
    message = notice(
        config.digest.sender,
        email,
        "Confirm your Podcast Digest subscription",
        body,
        new_message_id(config.digest.sender),
    )
    mail = transport or _transport(config)
    try:
        mail.send(message)
    except (DigestError, OSError) as exc:  # SMTP refused or unreachable, a full disk
        log.error("confirmation email not sent: %s", exc)
        return SignupResult("mail-failed", str(exc))
    finally:
        mail.close()
    store.subscribers.mark_mailed(token)
    return SignupResult("mailed")


def _transport(config: Config) -> Transport:
    if config.smtp.host:
        return SmtpTransport(config.smtp, config.secrets.smtp_password)
    return OutboxTransport(config.state_dir / "outbox" / "confirmations")


def usable(signup: Signup | None, now: datetime) -> Signup | None:
    """The sign-up if its link may still be used (unknown and expired links may not)."""
    if signup is None or (signup.confirmed_at is None and signup.expires_at < now):
        return None
    return signup


def confirm(store: Store, signup: Signup, now: datetime) -> Subscriber:
    subscriber = store.subscribers.confirm(signup, now)
    log.info("sign-up confirmed: subscriber %d is active", subscriber.id)
    return subscriber
