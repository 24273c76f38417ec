"""Subscriber input rules: address syntax, timezone, send time. Pure, no network."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from digest.config import SEND_TIME, check_timezone
from digest.errors import ConfigError, InvalidInput


def normalise_email(address: str) -> str:
    """Validate syntax only (no DNS: deliverability checks need a network) and normalise."""
    if any(ch in address for ch in "\r\n\x00"):
        raise InvalidInput(f"{address!r} is not a valid email address: it contains a line break")
    try:
        result = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"{address!r} is not a valid email address: {exc}") from exc
    return str(result.normalized)


def check_subscriber_timezone(name: str) -> str:
    try:
        check_timezone(name)
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from exc
    return name


def check_send_time(value: str) -> str:
    if not SEND_TIME.match(value):
        raise InvalidInput(f"send time {value!r} must be HH:MM in 24-hour form, e.g. 07:30")
    return value
