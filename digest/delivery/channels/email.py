"""The `email` channel: each reader's own message (List-Unsubscribe, one-click), over
SMTP when `[smtp] host` is set, else into the `.eml` outbox. This module is the one
place that makes that choice, for digests and sign-up confirmations alike."""

from __future__ import annotations

from pathlib import Path

from digest.core.config import Config
from digest.core.models import Edition, Endpoint, Subscriber
from digest.delivery.message import Composer, Transport, new_message_id
from digest.delivery.outbox import OutboxTransport
from digest.delivery.smtp import SmtpTransport


def mail_transport(config: Config, outbox: str) -> Transport:
    """SMTP if a host is set, else `<state>/outbox/<outbox>/`."""
    if config.smtp.host:
        return SmtpTransport(config.smtp, config.secrets.smtp_password)
    return OutboxTransport(config.state_dir / "outbox" / outbox)


class EmailChannel:
    name = "email"

    def __init__(self, config: Config, transport: Transport | None = None) -> None:
        self.config = config
        self.transports: dict[str, Transport] = {}  # one per date: the outbox folder
        if transport is not None:  # given by the caller (the load test counts messages)
            self.transports[""] = transport
        self.composers: dict[tuple[str, str], Composer] = {}  # one MIME build per edition

    @property
    def written(self) -> list[Path]:
        return [p for t in self.transports.values() if isinstance(t, OutboxTransport)
                for p in t.written]  # fmt: skip

    def new_delivery_id(self) -> str:
        """A Message-ID: receiving servers drop a second copy that carries the same one."""
        return new_message_id(self.config.digest.sender)

    def deliver(
        self,
        edition: Edition,
        reader: Subscriber,
        delivery_id: str,
        endpoint: Endpoint | None = None,  # one per reader: their address
    ) -> None:
        key = (edition.date, edition.selection)
        if key not in self.composers:
            d, web = self.config.digest, self.config.web
            self.composers[key] = Composer(edition.email, web.base_url, d.sender)
        message = self.composers[key].compose(reader, delivery_id)
        self._transport(edition.date).send(message)

    def _transport(self, date: str) -> Transport:
        if self.config.smtp.host or "" in self.transports:
            date = ""  # one connection (or the caller's transport) serves every date
        if date not in self.transports:
            self.transports[date] = mail_transport(self.config, date)
        return self.transports[date]

    def close(self) -> None:
        for transport in self.transports.values():
            transport.close()
