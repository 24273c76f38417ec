"""SMTP as providers run it: STARTTLS on 587 or implicit TLS on 465, then a login.

Every failure is sorted by what can cure it (the channel errors of
`digest.delivery.channels`). `ChannelSetupError`: only a setting can (a
refused password, a certificate that does not verify, STARTTLS or AUTH not offered,
a TLS handshake that fails, the sender refused); its message names that setting,
and retrying is pointless, so the batch stops at once. `ChannelUnavailable`: the
server cannot be reached right now (refused, timed out, 421); the next attempt may
succeed. Nothing is ever sent before TLS is up when the config asks for TLS.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage

from digest.core.settings import SmtpSettings
from digest.delivery.channels import (
    ChannelSetupError,
    ChannelUnavailable,
    DeliveryError,
    PermanentlyRefused,
    Refused,
)
from digest.delivery.message import POLICY, Outgoing, date_header, new_message_id, serialise

Step = Callable[[str], None]


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """Verifying context: `[smtp] ca_file` when set, else $SSL_CERT_FILE or the system store."""
    return ssl.create_default_context(cafile=settings.ca_file or None)


def trust_store(settings: SmtpSettings) -> str:
    """The CA bundle a verification used, for error messages."""
    if settings.ca_file:
        return f"[smtp] ca_file = {settings.ca_file}"
    if os.environ.get("SSL_CERT_FILE"):
        return f"$SSL_CERT_FILE = {os.environ['SSL_CERT_FILE']}"
    paths = ssl.get_default_verify_paths()
    return f"the system CA store ({paths.cafile or paths.capath})"


def _quiet(_: str) -> None:
    pass


def connect(settings: SmtpSettings, password: str, step: Step = _quiet) -> smtplib.SMTP:
    """An open, secured, logged-in connection, reporting each step; or a sorted error."""
    smtp: smtplib.SMTP | None = None
    try:
        smtp = _open(settings, step)
        _secure_and_login(smtp, settings, password, step)
        return smtp
    except DeliveryError:
        _close(smtp)
        raise
    except (OSError, smtplib.SMTPException) as exc:
        _close(smtp)
        raise classify(exc, settings) from exc


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.close()


def _open(s: SmtpSettings, step: Step) -> smtplib.SMTP:
    where = f"{s.host}:{s.port}"
    if s.security == "ssl":
        step(f"connecting to {where} with implicit TLS")
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            s.host, s.port, timeout=s.timeout_seconds, context=tls_context(s)
        )
        step(_tls_line(smtp, s))
    else:
        step(f"connecting to {where}")
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
    code, banner = smtp.ehlo()
    step(f"EHLO answered {code}: {banner.decode(errors='replace').splitlines()[0]}")
    return smtp


def _secure_and_login(smtp: smtplib.SMTP, s: SmtpSettings, password: str, step: Step) -> None:
    where = f"{s.host}:{s.port}"
    if s.security == "starttls":
        if not smtp.has_extn("starttls"):
            raise ChannelSetupError(
                f'{where} does not offer STARTTLS, which [smtp] security = "starttls" '
                "requires; nothing was sent in clear text. Use the server's submission port "
                '(usually 587), or security = "ssl" for implicit TLS (usually 465)'
            )
        smtp.starttls(context=tls_context(s))
        smtp.ehlo()
        step(_tls_line(smtp, s))
    if not s.username:
        step("no [smtp] username: sending without logging in")
        return
    if not smtp.has_extn("auth"):
        raise ChannelSetupError(
            f"{where} offers no AUTH, but [smtp] username is set: check [smtp] security "
            "(many servers offer AUTH only after STARTTLS) and port, or clear [smtp] username "
            "for a relay that needs no login"
        )
    smtp.login(s.username, password)
    step(f"logged in as {s.username}")


def _tls_line(smtp: smtplib.SMTP, s: SmtpSettings) -> str:
    sock = smtp.sock
    if not isinstance(sock, ssl.SSLSocket):
        return "TLS is not up"
    cipher = sock.cipher()
    return (
        f"TLS {sock.version()} ({cipher[0] if cipher else '?'}), certificate of {s.host} "
        f"verified against {trust_store(s)}"
    )


def classify(exc: BaseException, s: SmtpSettings) -> DeliveryError:
    """A connection-time exception as the error a user can act on."""
    where = f"{s.host}:{s.port}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return ChannelSetupError(
            f"{where} refused the login of {s.username!r} ({_reply(exc)}): check [smtp] "
            "username and $DIGEST_SMTP_PASSWORD"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ChannelSetupError(
            f"the TLS certificate of {s.host} did not verify ({exc.verify_message}) against "
            f"{trust_store(s)}: set [smtp] ca_file to the CA that signed it, or fix [smtp] host "
            "to the name on the certificate"
        )
    if isinstance(exc, ssl.SSLError):
        return ChannelSetupError(
            f"the TLS handshake with {where} failed ({exc.reason or exc}): check [smtp] "
            'security and port ("ssl" is implicit TLS, usually port 465; "starttls" upgrades '
            "a plain connection, usually port 587)"
        )
    if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500:
        return ChannelSetupError(
            f"{where} turned the connection away ({_reply(exc)}): check [smtp] host, port, "
            "security and username"
        )
    return ChannelUnavailable(
        f"cannot reach the SMTP server {where} ({s.security}): {exc or type(exc).__name__}; "
        "the undelivered messages are tried again later (if this persists, check [smtp] host "
        "and port)"
    )


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    return f"{exc.smtp_code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"


def refusal(exc: smtplib.SMTPResponseException, s: SmtpSettings, sender: str) -> DeliveryError:
    """A refusal during one message: the sender (a setting), or the address (5xx: bounce)."""
    if isinstance(exc, smtplib.SMTPSenderRefused) and exc.smtp_code >= 500:
        return ChannelSetupError(
            f"{s.host}:{s.port} refused the sender {sender} ({_reply(exc)}): check [digest] "
            "sender, and that [smtp] username may send as that address"
        )
    message = f"the server answered {_reply(exc)}"
    return PermanentlyRefused(message) if 500 <= exc.smtp_code < 600 else Refused(message)


class SmtpTransport:
    """One connection for the batch; reconnects once per message if the server hung up."""

    def __init__(self, settings: SmtpSettings, password: str, step: Step = _quiet) -> None:
        self.settings = settings
        self.password = password
        self.step = step
        self._smtp: smtplib.SMTP | None = None

    def open(self) -> smtplib.SMTP:
        """The connection, opened (secured, logged in) if it is not yet."""
        if self._smtp is None:
            self._smtp = connect(self.settings, self.password, self.step)
        return self._smtp

    def send(self, message: Outgoing) -> None:
        options = ["SMTPUTF8"] if message.smtputf8 else []
        for attempt in (1, 2):
            smtp = self.open()
            try:
                smtp.sendmail(message.sender, [message.recipient], message.data, options)
                return
            except smtplib.SMTPServerDisconnected as exc:
                self._smtp = None  # the server hung up: one fresh connection, then give up
                if attempt == 2:
                    raise Refused(f"the SMTP server keeps disconnecting: {exc}") from exc
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = next(iter(exc.recipients.values()))
                refused = smtplib.SMTPResponseException(code, reply)
                raise refusal(refused, self.settings, message.sender) from exc
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code == 421:  # service closing: drop this connection
                    self.close()
                raise refusal(exc, self.settings, message.sender) from exc
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                raise Refused(f"SMTP error: {exc}") from exc

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
        self._smtp = None


def check_server(
    settings: SmtpSettings, password: str, *, sender: str, to: str | None, step: Step
) -> None:
    """`digest smtp check`: connect, secure, log in, and optionally send a short message,
    reporting each step; raises the same errors a send would."""
    transport = SmtpTransport(settings, password, step)
    try:
        transport.open()
        if to:
            message = EmailMessage(policy=POLICY)
            message["From"], message["To"] = sender, to
            message["Subject"] = "podcast-digest: SMTP check"
            message["Date"], message["Message-ID"] = date_header(), new_message_id(sender)
            message.set_content(
                "This message was sent by `digest smtp check`: the daily digest can reach you.\n"
            )
            transport.send(serialise(message))
            step(f"sent a test message to {to}")
    finally:
        transport.close()
