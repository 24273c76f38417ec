"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it accepts and can misbehave."""

from __future__ import annotations

import asyncio
import socket
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """aiosmtpd handler: accepted messages, refused addresses, scripted hang-ups."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}  # address -> SMTP reply, e.g. "550 5.1.1 no such user"
        self.hang_up_after: int | None = None  # accept this many, then drop connections...
        self.hang_ups_left: int | None = None  # ...this many times (None: every time)
        self.hang_ups = 0
        self.connections = 0
        self.delay = 0.0  # seconds before accepting each message (a slow server)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        due = self.hang_up_after is not None and len(self.messages) >= self.hang_up_after
        if due and self.hang_ups_left != 0:
            self.hang_ups += 1
            if self.hang_ups_left is not None:
                self.hang_ups_left -= 1
            server.transport.close()
            return "421 4.3.2 going away"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages.append(message_from_bytes(envelope.content, policy=default))  # type: ignore[arg-type]
        return "250 2.0.0 accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class SmtpServer:
    def __init__(self, mailbox: Mailbox | None = None) -> None:
        self.mailbox = mailbox or Mailbox()
        self.port = free_port()
        # SMTPUTF8 on, as Postfix, Exim and the big providers offer: addresses may be UTF-8.
        self.controller = Controller(
            self.mailbox, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True
        )
        self.controller.start()
        self.running = True

    def stop(self) -> None:
        if self.running:  # idempotent: some tests stop it early to play a dead server
            self.controller.stop()
            self.running = False
