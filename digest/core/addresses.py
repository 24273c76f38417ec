"""Subscriber input rules: address syntax and identity, timezone, send time. Pure, no network.

An address is kept as the reader typed it (that is what they read in the To: line),
but two spellings of one mailbox are one subscriber: `Victim@Example.org` and
`victim@example.org`, `x@bücher.de` and `x@xn--bcher-kva.de`. The rate limits go
one step further and count by inbox, so `victim+1@`, `victim+2@` (and, at Gmail,
`v.ictim@`) share one allowance of confirmation emails.
"""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, ValidatedEmail, validate_email

from digest.core.config import SEND_TIME, check_timezone
from digest.core.errors import ConfigError, InvalidInput

MAX_ADDRESS = 320  # RFC 3696's limit for a whole address
# Providers known to ignore dots in the local part: one inbox, 2^n spellings.
DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def _validated(address: str) -> ValidatedEmail:
    if len(address) > MAX_ADDRESS:
        raise InvalidInput(f"that email address is longer than {MAX_ADDRESS} characters")
    if any(ch in address for ch in "\r\n\x00"):
        raise InvalidInput(f"{address!r} is not a valid email address: it contains a line break")
    try:
        return validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"{address!r} is not a valid email address: {exc}") from exc


def normalise_email(address: str) -> str:
    """Validate syntax only (no DNS: deliverability checks need a network) and normalise
    (domain lower-cased, Unicode NFC); the local part keeps the reader's spelling."""
    return str(_validated(address).normalized)


def mailbox_key(address: str) -> str:
    """One key per mailbox: the local part case-folded, the domain in its ASCII form."""
    valid = _validated(address)
    return f"{valid.local_part.casefold()}@{valid.ascii_domain.lower()}"


def inbox_key(address: str) -> str:
    """The inbox that mail to `address` lands in, for rate limits: the mailbox without
    a `+tag` (sub-addressing), and without dots where the provider ignores them."""
    local, _, domain = mailbox_key(address).rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "") or local
    return f"{local}@{domain}"


def ascii_address(address: str) -> str:
    """The address as a relay without SMTPUTF8 can carry it: an IDN domain in its
    ASCII (punycode) form. A non-ASCII local part has no such form and stays."""
    valid = _validated(address)
    if valid.local_part.isascii():
        return f"{valid.local_part}@{valid.ascii_domain}"
    return str(valid.normalized)


def check_subscriber_timezone(name: str) -> str:
    try:
        check_timezone(name)
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from exc
    return name


def check_send_time(value: str) -> str:
    if not SEND_TIME.fullmatch(value):
        raise InvalidInput(f"send time {value!r} must be HH:MM in 24-hour form, e.g. 07:30")
    return value


TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")  # the shape of every link token we issue
