"""Delivery: one personal message per subscriber, over SMTP or into the `.eml` outbox.

Messages carry List-Unsubscribe (mailto and https) and List-Unsubscribe-Post
(RFC 8058 one-click), which Gmail and Yahoo require of bulk senders. One SMTP
connection serves the batch and is re-opened if the server drops it. Refusals
are sorted into permanent (5xx: the address is marked and skipped from then on)
and temporary (4xx: retried on the next run).
"""

from __future__ import annotations

import contextlib
import email.policy
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from digest.config import SmtpSettings
from digest.errors import DigestError
from digest.models import Subscriber
from digest.render import EmailContent
from digest.subscribers import normalise_email

# Headers up to RFC 5322's 998 characters: folding List-Unsubscribe at 78 would turn
# its URLs into RFC 2047 encoded-words that mail clients cannot parse.
POLICY = email.policy.default.clone(max_line_length=998)


class DeliveryError(DigestError):
    """A message was not accepted."""

    permanent = False


class ConnectionFailed(DeliveryError):
    """The server cannot be reached at all: stop the batch, retry it all on the next run."""


class Rejected(DeliveryError):
    """The server refused the address for good (5xx): do not try it again."""

    permanent = True


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
    content: EmailContent, subscriber: Subscriber, links: Links, sender: str, message_id: str
) -> EmailMessage:
    """multipart/alternative (text, HTML) with the headers mail providers expect."""
    text, html = content.personalise(links.unsubscribe, links.manage)
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    # Re-validated here: an address with CR/LF can never become a header injection.
    message["To"] = Address(addr_spec=normalise_email(subscriber.email))
    message["Subject"] = content.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<{links.mailto}>, <{links.unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["List-Id"] = f"Podcast Digest <digest.{sender_address(sender).split('@')[-1]}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def new_message_id(sender: str) -> str:
    return make_msgid(domain=sender_address(sender).split("@")[-1] or "localhost")


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


class SmtpTransport:
    """One connection for the batch; reconnects once per message if the server hung up."""

    def __init__(self, settings: SmtpSettings, password: str) -> None:
        self.settings = settings
        self.password = password
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_seconds, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
                if s.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if s.username:
                smtp.login(s.username, self.password)
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionFailed(
                f"cannot connect to SMTP server {s.host}:{s.port} ({s.security}): {exc}; "
                "check [smtp] host, port, security and username, and $DIGEST_SMTP_PASSWORD"
            ) from exc
        return smtp

    def send(self, message: EmailMessage) -> None:
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                self._smtp.send_message(message)
                return
            except smtplib.SMTPServerDisconnected as exc:
                self._smtp = None  # the server hung up: one fresh connection, then give up
                if attempt == 2:
                    raise DeliveryError(f"the SMTP server keeps disconnecting: {exc}") from exc
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = next(iter(exc.recipients.values()))
                raise _refusal(code, reply) from exc
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code == 421:  # service closing: drop this connection
                    self.close()
                raise _refusal(exc.smtp_code, exc.smtp_error) from exc
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                raise DeliveryError(f"SMTP error: {exc}") from exc

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
        self._smtp = None


def _refusal(code: int, reply: bytes | str) -> DeliveryError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    message = f"the server answered {code} {text}"
    return Rejected(message) if 500 <= code < 600 else DeliveryError(message)


class OutboxTransport:
    """No SMTP host configured: each message becomes `<outbox>/<date>/<address>.eml`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[Path] = []

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = "".join(c if c.isalnum() or c in "@.-_" else "_" for c in str(message["To"]))
        path = self.folder / f"{name}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(message))
        os.replace(tmp, path)
        self.written.append(path)

    def close(self) -> None:
        pass
