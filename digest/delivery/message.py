"""Delivery: one personal message per subscriber, over SMTP or into the `.eml` outbox.

Messages carry List-Unsubscribe (mailto and https) and List-Unsubscribe-Post
(RFC 8058 one-click), which Gmail and Yahoo require of bulk senders. One SMTP
connection serves the batch and is re-opened if the server drops it. Refusals
are sorted into permanent (5xx: the address is marked and skipped from then on)
and temporary (4xx: retried on the next run).
"""

from __future__ import annotations

import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import Protocol
from urllib.parse import quote

from digest.core.addresses import ascii_address
from digest.core.models import EmailContent, Subscriber

# Headers up to RFC 5322's 998 characters: folding List-Unsubscribe at 78 would turn
# its URLs into RFC 2047 encoded-words that mail clients cannot parse.
POLICY = email.policy.default.clone(max_line_length=998)
WIRE = POLICY.clone(linesep="\r\n")  # what SMTP DATA and .eml files carry
log = logging.getLogger("digest.deliver")


@dataclass(frozen=True)
class Links:
    unsubscribe: str  # https, one click
    manage: str
    mailto: str  # mailto: fallback for clients without one-click


def links_for(subscriber: Subscriber, base_url: str, sender: str) -> Links:
    base = base_url.rstrip("/")
    token = subscriber.unsubscribe_token
    address = sender_address(sender)
    return Links(
        unsubscribe=f"{base}/unsubscribe/{token}",
        manage=f"{base}/subscription/{token}",
        mailto=f"mailto:{address}?subject={quote('unsubscribe ' + token)}",
    )


def sender_address(sender: str) -> str:
    [(_, address)] = getaddresses([sender]) or [("", sender)]
    return address or sender


def build_message(
    content: EmailContent,
    subscriber: Subscriber,
    links: Links,
    sender: str,
    message_id: str,
    date: str | None = None,
) -> EmailMessage:
    """multipart/alternative (text, HTML) with the headers mail providers expect."""
    text, html = content.personalise(links.unsubscribe, links.manage)
    message = addressed(sender, subscriber.email, content.subject, message_id, date)
    message["List-Unsubscribe"] = f"<{links.mailto}>, <{links.unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["List-Id"] = f"Podcast Digest <digest.{sender_address(sender).split('@')[-1]}>"
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable always (not base64 for some days' text): readable in any client's
    # "show original", and what lets a Composer substitute personal parts in the bytes.
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    # "=_" never occurs in quoted-printable text, and a boundary fixed per day's content
    # (not random per message) keeps every copy of the day's message the same bytes.
    digest_of = hashlib.sha256((content.text + content.html).encode()).hexdigest()[:32]
    message.set_boundary(f"=_digest_{digest_of}")
    return message


def addressed(
    sender: str, to: str, subject: str, message_id: str, date: str | None = None
) -> EmailMessage:
    """A message with the headers every email carries: From, To, Subject, Date, Message-ID."""
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    # Re-validated here: an address with CR/LF can never become a header injection. An
    # IDN domain goes in its ASCII form, which every relay carries (SMTPUTF8 is needed
    # only for a local part that is not ASCII).
    local, _, domain = ascii_address(to).rpartition("@")
    message["To"] = Address(username=local, domain=domain)  # addr_spec= refuses UTF-8 locals
    message["Subject"] = subject
    message["Date"] = date or date_header()
    message["Message-ID"] = message_id
    return message


@dataclass(frozen=True)
class Outgoing:
    """One message as handed over: the envelope and the exact bytes (CRLF line ends)."""

    sender: str
    recipient: str
    data: bytes
    smtputf8: bool = False  # a non-ASCII address: needs the server's SMTPUTF8 extension


def serialise(message: EmailMessage) -> Outgoing:
    sender = sender_address(str(message["From"]))
    recipient = message["To"].addresses[0].addr_spec
    international = not (sender + recipient).isascii()
    data = message.as_bytes(policy=WIRE.clone(utf8=True) if international else WIRE)
    return Outgoing(sender, recipient, data, international)


TOKEN_SLOT = "Zq0SlotForTheUnsubscribeToken0qZ"  # as long as secrets.token_urlsafe(24)
ADDRESS_SLOT = "zq0-slot-for-the-address@zq0-slot.example.com"
ID_SLOT = "<zq0-slot-for-the-message-id@zq0-slot.example.com>"
DATE_SLOT = "Thu, 01 Jan 1970 00:00:00 +0000"
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")
PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


class Composer:
    """A day's messages, serialised once: each subscriber's copy is the same bytes with
    their address, token, Message-ID and date substituted (ten thousand subscribers
    cost one MIME build, not ten thousand). The first copy is checked byte for byte
    against a full build; anything unusual (a non-ASCII address, an odd token) takes
    the full build."""

    def __init__(self, content: EmailContent, base_url: str, sender: str) -> None:
        self.content, self.base_url, self.sender = content, base_url, sender
        self.template: bytes | None = None
        self.checked = False

    def compose(self, subscriber: Subscriber, message_id: str) -> Outgoing:
        date = date_header()
        fast = PLAIN_ADDRESS.fullmatch(subscriber.email) and PLAIN_TOKEN.fullmatch(
            subscriber.unsubscribe_token
        )
        if not fast or (self.checked and self.template is None):
            return self._build(subscriber, message_id, date)
        data = self._substitute(subscriber, message_id, date)
        if not self.checked:
            self.checked = True
            full = self._build(subscriber, message_id, date)
            if full.data != data:
                log.warning("message template check failed; building every message in full")
                self.template = None
                return full
        return Outgoing(sender_address(self.sender), subscriber.email, data)

    def _build(self, subscriber: Subscriber, message_id: str, date: str) -> Outgoing:
        links = links_for(subscriber, self.base_url, self.sender)
        return serialise(
            build_message(self.content, subscriber, links, self.sender, message_id, date)
        )

    def _substitute(self, subscriber: Subscriber, message_id: str, date: str) -> bytes:
        if self.template is None:
            slot = replace(subscriber, email=ADDRESS_SLOT, unsubscribe_token=TOKEN_SLOT)
            self.template = self._build(slot, ID_SLOT, DATE_SLOT).data
        data = self.template
        for old, new in (
            (TOKEN_SLOT, subscriber.unsubscribe_token),
            (ADDRESS_SLOT, subscriber.email),
            (ID_SLOT, message_id),
            (DATE_SLOT, date),
        ):
            data = data.replace(old.encode(), new.encode())
        return data


def date_header() -> str:
    """Now, in the form the Date header takes once parsed ("+0000", not "GMT")."""
    return format_datetime(datetime.now(UTC))


def new_message_id(sender: str) -> str:
    return make_msgid(domain=sender_address(sender).split("@")[-1] or "localhost")


class Transport(Protocol):
    """How a message leaves: SMTP (`digest.delivery.smtp`) or the outbox."""

    def send(self, message: Outgoing) -> None: ...

    def close(self) -> None: ...


def notice(sender: str, to: str, subject: str, text: str, message_id: str) -> Outgoing:
    """A one-off transactional message (a sign-up confirmation): plain text, no list
    headers, since it is not part of the digest list the reader may not have joined."""
    message = addressed(sender, to, subject, message_id)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, cte="quoted-printable")
    return serialise(message)
