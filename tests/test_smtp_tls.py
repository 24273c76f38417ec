"""Mail delivery as providers run it: real TLS (STARTTLS and implicit), real AUTH, with
a certificate from a private CA made in this session. Permanent errors end the send
at once with the setting named; the day's messages go out once it is fixed, none
twice."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest import jobs
from digest.cli import cli
from digest.core.config import Config
from digest.store import Store
from tests.support.prefect_server import PrefectServer
from tests.support.seed import seed_insights
from tests.support.smtpserver import SmtpServer
from tests.support.tls import ServerCert, make_cert

# aiosmtpd warns that AUTH without TLS is unsafe when it serves implicit TLS, which it
# does not count as TLS (every byte is encrypted there before SMTP starts).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
USER, PASSWORD = "digest@example.org", "correct horse battery staple"
READERS = ["ada@example.org", "grace@example.org", "linus@example.org"]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> ServerCert:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> ServerCert:
    """A certificate signed by a CA the client was never told to trust."""
    return make_cert(tmp_path_factory.mktemp("stranger"), ca_name="someone else's CA")


@pytest.fixture
def servers() -> Iterator[list[SmtpServer]]:
    started: list[SmtpServer] = []
    yield started
    for server in started:
        server.stop(hold_port=False)


def serve(servers: list[SmtpServer], **kwargs: Any) -> SmtpServer:
    server = SmtpServer(**kwargs)
    servers.append(server)
    return server


def smtp_config(make_config: Any, server: SmtpServer, ca: ServerCert, **smtp: Any) -> Config:
    settings = {"host": "127.0.0.1", "port": server.port, "ca_file": str(ca.ca_file), **smtp}
    return make_config(smtp=settings)


def smtp_file(tmp_path: Path, server: SmtpServer, **smtp: str) -> Path:
    """A config file for a CLI or flow test: state in tmp_path, this SMTP server, readers
    due from midnight (whatever hour the suite runs)."""
    settings = "".join(f'{key} = "{value}"\n' for key, value in smtp.items())
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[storage]\nstate_dir = "{tmp_path / "state"}"\n[digest]\nsend_time = "00:00"\n'
        f'[web]\nbase_url = "http://digest.example.org"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\n{settings}'
    )
    return config


def with_password(config: Config, password: str) -> Config:
    from dataclasses import replace

    return replace(config, secrets=replace(config.secrets, smtp_password=password))


def readers_with_a_digest(config: Config) -> Store:
    store = Store(config.database_url)
    seed_insights(store, config, scripts=("kimi-k2",))
    for address in READERS:
        store.subscribers.add(address, jobs.utcnow())
    return store


def test_starttls_and_auth_required_deliver_over_tls(
    servers: list[SmtpServer], cert: ServerCert, make_config: Any
) -> None:
    server = serve(servers, tls="starttls", context=cert.server_context(), users={USER: PASSWORD})
    config = with_password(
        smtp_config(make_config, server, cert, security="starttls", username=USER), PASSWORD
    )
    report = jobs.send_digests(readers_with_a_digest(config), config)
    assert report.count("sent") == 3 and not report.stopped
    box = server.mailbox
    assert sorted(str(m["To"]) for m in box.messages) == READERS
    assert box.tls_mail_commands == box.mail_commands == 3, "every message went over TLS"
    assert box.logins == [(USER, True)], "one login for the whole batch"


def test_implicit_tls_and_auth_deliver(
    servers: list[SmtpServer], cert: ServerCert, make_config: Any
) -> None:
    server = serve(servers, tls="implicit", context=cert.server_context(), users={USER: PASSWORD})
    config = with_password(
        smtp_config(make_config, server, cert, security="ssl", username=USER), PASSWORD
    )
    report = jobs.send_digests(readers_with_a_digest(config), config)
    assert report.count("sent") == 3
    assert server.mailbox.tls_mail_commands == 3


def test_a_wrong_password_stops_at_once_names_the_setting_and_the_fix_delivers_once(
    servers: list[SmtpServer], cert: ServerCert, make_config: Any
) -> None:
    server = serve(servers, tls="starttls", context=cert.server_context(), users={USER: PASSWORD})
    config = smtp_config(make_config, server, cert, security="starttls", username=USER)
    store = readers_with_a_digest(config)
    wrong = jobs.send_digests(store, with_password(config, "Tr0ub4dor&3"))
    assert wrong.needs_setting and wrong.count("sent") == 0
    assert "refused the login" in (wrong.stopped or "")
    assert "[smtp] username and $DIGEST_SMTP_PASSWORD" in (wrong.stopped or "")
    # One login: smtplib tries it once per mechanism the server offers (PLAIN, LOGIN).
    assert server.mailbox.logins == [(USER, False)] * 2, "one login, no retry loop"
    assert not jobs.DeliveryIncomplete(wrong).retryable
    assert {s.status for s in store.subscribers.list()} == {"active"}, "nobody bounced"
    fixed = jobs.send_digests(store, with_password(config, PASSWORD))
    assert fixed.count("sent") == 3
    assert jobs.send_digests(store, with_password(config, PASSWORD)).count("sent") == 0
    assert sorted(str(m["To"]) for m in server.mailbox.messages) == READERS, "none twice"


def test_an_untrusted_certificate_is_refused_before_anything_is_sent(
    servers: list[SmtpServer], cert: ServerCert, stranger: ServerCert, make_config: Any
) -> None:
    server = serve(
        servers, tls="starttls", context=stranger.server_context(), users={USER: PASSWORD}
    )
    config = with_password(
        smtp_config(make_config, server, cert, security="starttls", username=USER), PASSWORD
    )
    report = jobs.send_digests(readers_with_a_digest(config), config)
    assert report.needs_setting and report.count("sent") == 0
    stopped = report.stopped or ""
    assert "certificate of 127.0.0.1 did not verify" in stopped
    assert f"[smtp] ca_file = {cert.ca_file}" in stopped, "names the CA bundle in use"
    assert server.mailbox.logins == [] and server.mailbox.mail_commands == 0


def test_starttls_demanded_but_not_offered_sends_nothing_in_clear_text(
    servers: list[SmtpServer], cert: ServerCert, make_config: Any
) -> None:
    server = serve(servers)  # a plain server: no STARTTLS, but it would take mail
    config = with_password(
        smtp_config(make_config, server, cert, security="starttls", username=USER), PASSWORD
    )
    report = jobs.send_digests(readers_with_a_digest(config), config)
    assert report.needs_setting
    assert "does not offer STARTTLS" in (report.stopped or "")
    assert '[smtp] security = "starttls"' in (report.stopped or "")
    assert server.mailbox.mail_commands == 0 and server.mailbox.logins == []


def test_implicit_tls_against_a_plain_port_is_a_handshake_error_naming_security_and_port(
    servers: list[SmtpServer], cert: ServerCert, make_config: Any
) -> None:
    server = serve(servers)
    config = smtp_config(make_config, server, cert, security="ssl")
    report = jobs.send_digests(readers_with_a_digest(config), config)
    assert report.needs_setting
    assert "TLS handshake" in (report.stopped or "") and "[smtp] security and port" in (
        report.stopped or ""
    )


def test_a_server_without_auth_while_a_username_is_set(
    servers: list[SmtpServer], cert: ServerCert, make_config: Any
) -> None:
    server = serve(servers, tls="starttls", context=cert.server_context())
    server.mailbox.offer_auth = False
    config = with_password(
        smtp_config(make_config, server, cert, security="starttls", username=USER), PASSWORD
    )
    report = jobs.send_digests(readers_with_a_digest(config), config)
    assert report.needs_setting and "offers no AUTH" in (report.stopped or "")
    assert server.mailbox.mail_commands == 0


def test_a_refused_sender_is_a_setting_not_a_bounce(
    servers: list[SmtpServer], cert: ServerCert, make_config: Any
) -> None:
    server = serve(servers, tls="starttls", context=cert.server_context())
    server.mailbox.refuse_sender = "553 5.7.1 sender address rejected: not owned by user"
    config = smtp_config(make_config, server, cert, security="starttls")
    store = readers_with_a_digest(config)
    report = jobs.send_digests(store, config)
    assert report.needs_setting and "[digest] sender" in (report.stopped or "")
    assert report.count("rejected") == 0
    assert {s.status for s in store.subscribers.list()} == {"active"}, "nobody bounced"


def test_a_dropped_connection_mid_batch_under_tls_loses_and_doubles_nothing(
    servers: list[SmtpServer], cert: ServerCert, make_config: Any
) -> None:
    server = serve(servers, tls="starttls", context=cert.server_context(), users={USER: PASSWORD})
    server.mailbox.hang_up_after, server.mailbox.hang_ups_left = 1, 1
    config = with_password(
        smtp_config(make_config, server, cert, security="starttls", username=USER), PASSWORD
    )
    report = jobs.send_digests(readers_with_a_digest(config), config)
    assert report.count("sent") == 3 and server.mailbox.hang_ups == 1
    assert sorted(str(m["To"]) for m in server.mailbox.messages) == READERS
    assert server.mailbox.tls_mail_commands == server.mailbox.mail_commands
    assert [ok for _, ok in server.mailbox.logins] == [True, True], "logged in again after"


def test_smtp_check_prints_each_step_and_sends_a_test_message(
    servers: list[SmtpServer], cert: ServerCert, tmp_path: Path
) -> None:
    server = serve(servers, tls="starttls", context=cert.server_context(), users={USER: PASSWORD})
    config = smtp_file(
        tmp_path, server, security="starttls", username=USER, ca_file=str(cert.ca_file)
    )
    runner = CliRunner()

    def check(password: str, *args: str) -> Any:
        env = {"DIGEST_SMTP_PASSWORD": password}
        return runner.invoke(cli, ["--config", str(config), "smtp", "check", *args], env=env)

    ok = check(PASSWORD, "--to", "me@example.org")
    assert ok.exit_code == 0, ok.output
    out = " ".join(ok.output.split())
    for step in ("connecting to 127.0.0.1", "TLS", "verified against [smtp] ca_file",
                 f"logged in as {USER}", "sent a test message to me@example.org"):  # fmt: skip
        assert step in out, (step, ok.output)
    [message] = server.mailbox.messages
    assert str(message["To"]) == "me@example.org" and "SMTP check" in str(message["Subject"])
    bad = check("wrong")
    assert bad.exit_code == 1
    errors = [line for line in bad.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "$DIGEST_SMTP_PASSWORD" in bad.output
    assert "Traceback" not in bad.output
    outbox_only = tmp_path / "outbox.toml"
    outbox_only.write_text(f'[storage]\nstate_dir = "{tmp_path / "state"}"\n')
    without_host = runner.invoke(cli, ["--config", str(outbox_only), "smtp", "check"])
    assert without_host.exit_code == 1 and "no [smtp] host is set" in without_host.output


@pytest.mark.slow
def test_digest_send_and_digest_run_end_at_once_on_a_refused_login_and_deliver_once_fixed(
    servers: list[SmtpServer], cert: ServerCert, tmp_path: Path, prefect_server: PrefectServer
) -> None:
    server = serve(servers, tls="implicit", context=cert.server_context(), users={USER: PASSWORD})
    config = smtp_file(tmp_path, server, security="ssl", username=USER)

    def digest(password: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**_env(), "DIGEST_SMTP_PASSWORD": password, "SSL_CERT_FILE": str(cert.ca_file)}
        env["PREFECT_API_URL"] = prefect_server.api  # the session's server, not a temporary one
        return subprocess.run(
            [sys.executable, "-m", "digest.cli", "--config", str(config), *args],
            env=env, capture_output=True, text=True, timeout=180,  # minutes would mean a retry sleep
        )  # fmt: skip

    assert digest(PASSWORD, "init", "--sample").returncode == 0
    run = digest("wrong", "run")
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "refused the login" in errors[0], run.stderr[-2000:]
    assert "$DIGEST_SMTP_PASSWORD" in " ".join(run.stderr.split())
    assert "Processed 3 episode(s): 3 completed" in run.stdout, "the rest of the run completed"
    send = digest("wrong", "send")
    assert send.returncode == 1 and "refused the login" in send.stderr
    assert server.mailbox.messages == [] and [ok for _, ok in server.mailbox.logins] == [False] * 4
    fixed = digest(PASSWORD, "run")
    assert fixed.returncode == 0, fixed.stdout[-2000:] + fixed.stderr[-2000:]
    assert "Sent 1 message(s)" in fixed.stdout
    again = digest(PASSWORD, "send")
    assert "Sent 0 message(s)" in again.stdout
    assert [str(m["To"]) for m in server.mailbox.messages] == ["reader@example.com"]


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}


@pytest.mark.slow  # starts Prefect
def test_the_send_task_retries_a_busy_server_and_never_a_refused_login(
    servers: list[SmtpServer], cert: ServerCert, tmp_path: Path
) -> None:
    from prefect import flow

    from flows.pipeline import send

    server = serve(servers, tls="starttls", context=cert.server_context(), users={USER: PASSWORD})
    config = smtp_file(tmp_path, server, username=USER, ca_file=str(cert.ca_file))
    from digest.core.config import load_config

    settings = load_config(str(config))
    readers_with_a_digest(settings)
    quick = send.with_options(retry_delay_seconds=1)  # the policy as deployed, minus the wait

    @flow(persist_result=False)
    def deliver() -> Any:
        return quick(str(config), None)

    import os

    os.environ["DIGEST_SMTP_PASSWORD"] = "wrong"
    try:
        state = deliver(return_state=True)
    finally:
        del os.environ["DIGEST_SMTP_PASSWORD"]
    assert state.is_failed() and "refused the login" in str(state.message)
    assert len(server.mailbox.logins) == 2, "one login (two mechanisms), never retried"

    # Busy: every MAIL answered 421 twice (the transport reconnects once), then fine.
    server.mailbox.hang_up_after, server.mailbox.hang_ups_left = 0, 2
    os.environ["DIGEST_SMTP_PASSWORD"] = PASSWORD
    later = config.stat().st_mtime + 1
    os.utime(config, (later, later))  # as after an operator's edit: the worker reloads it
    try:
        report = deliver()
    finally:
        del os.environ["DIGEST_SMTP_PASSWORD"]
    assert server.mailbox.hang_ups == 2
    assert report.count("sent") == 1, "the retry sent only the message the busy server refused"
    assert sorted(str(m["To"]) for m in server.mailbox.messages) == READERS
