"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it accepts and can misbehave."""

from __future__ import annotations

import asyncio
import socket
import ssl
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.ports import bound_socket, port_of, rebind


class BoundController(Controller):
    """aiosmtpd's controller serving on a socket bound before it starts (no port race)."""

    def __init__(self, handler: Any, sock: socket.socket, **options: Any) -> None:
        self._sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=port_of(sock), **options)

    def _create_server(self) -> Any:
        self._sock.listen(128)
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


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
        self.mail_commands = 0  # MAIL FROM commands seen: zero means nothing was sent
        self.tls_mail_commands = 0  # ... of which over TLS
        self.logins: list[tuple[str, bool]] = []  # (user, accepted) per AUTH attempt
        self.refuse_sender: str | None = None  # a reply to MAIL FROM, e.g. "553 5.7.1 ..."
        self.offer_auth = True  # False: EHLO lists no AUTH (a relay that takes no logins)
        # (MAIL FROM, RCPT TOs, MAIL options) of each accepted message, as the wire said.
        self.envelopes: list[tuple[str, list[str], list[str]]] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        if self.offer_auth:
            return responses
        return [r for r in responses if not r[4:].upper().startswith("AUTH")]

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
        self.mail_commands += 1
        encrypted = session.ssl is not None or server.transport.get_extra_info("ssl_object")
        self.tls_mail_commands += bool(encrypted)
        if self.refuse_sender:
            return self.refuse_sender
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
        self.envelopes.append(
            (envelope.mail_from, list(envelope.rcpt_tos), list(envelope.mail_options))
        )
        return "250 2.0.0 accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class Accounts:
    """aiosmtpd authenticator: LOGIN/PLAIN against a user table, every attempt recorded."""

    def __init__(self, mailbox: Mailbox, users: dict[str, str]) -> None:
        self.mailbox, self.users = mailbox, users

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = data.login.decode(), data.password.decode()
        ok = self.users.get(user) == password
        self.mailbox.logins.append((user, ok))
        return AuthResult(success=ok, handled=False)


class SmtpServer:
    """aiosmtpd on loopback. `tls`: None (plain), "starttls" (offered and required before
    MAIL and AUTH) or "implicit" (TLS from the first byte, as on port 465); `users`: AUTH
    required with these logins."""

    def __init__(
        self,
        mailbox: Mailbox | None = None,
        *,
        tls: str | None = None,
        context: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
        smtputf8: bool = True,
    ) -> None:
        self.mailbox = mailbox or Mailbox()
        self.sock = bound_socket()
        self.port = port_of(self.sock)
        options: dict[str, Any] = {}
        if tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        elif tls == "implicit":
            options.update(ssl_context=context)
        if users is not None:
            options.update(
                authenticator=Accounts(self.mailbox, users),
                auth_required=True,
                # aiosmtpd only knows TLS it negotiated itself (STARTTLS); with implicit TLS
                # every byte is encrypted already, so AUTH may be offered at once.
                auth_require_tls=tls == "starttls",
            )
        # SMTPUTF8 on, as Postfix, Exim and the big providers offer: addresses may be UTF-8
        # (off: an older relay, which carries ASCII addresses only).
        self.controller = BoundController(
            self.mailbox, self.sock, enable_SMTPUTF8=smtputf8, **options
        )
        self.controller.start()
        self.running = True

    def stop(self, *, hold_port: bool = True) -> None:
        """Stop answering. `hold_port` (a test playing a dead server): keep the port bound,
        not listening, so it refuses connections and no other process's server can start
        answering on it; at the end of a test there is nothing left to refuse."""
        if self.running:  # idempotent: some tests stop it early to play a dead server
            self.controller.stop()
            self.running = False
            if hold_port:  # None if its connections outlast a wait
                self.placeholder = rebind(self.port)
