"""Links that reach readers: with a mail server set, a `[web] base_url` that only this
machine or network knows is refused before anything is sent; addresses on IDN domains
travel in ASCII form, so a relay without SMTPUTF8 delivers them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest.cli import cli
from digest.core.config import check_mail_links, config_from_dict
from digest.core.errors import ConfigError
from digest.jobs import send_digests, utcnow
from digest.store import Store
from digest.store.schema import deliveries
from tests.support.seed import seed_insights
from tests.support.smtpserver import SmtpServer

DATABASES = ("sqlite",)  # links and addresses, not the database: one backend is enough


@pytest.mark.parametrize(
    "base_url",
    [
        "http://localhost:8025",
        "http://127.0.0.1:8025",
        "http://[::1]:8025",
        "http://10.1.2.3",
        "http://192.168.1.20/digest",
        "http://169.254.1.1",
        "http://digest",
        "http://digest.local",
        "https://digest.internal",
        "https://app.localhost",
        "ftp://digest.example.org",
        "digest.example.org",
    ],
)
def test_a_base_url_readers_cannot_reach_is_refused_when_mail_is_real(base_url: str) -> None:
    config = config_from_dict({"smtp": {"host": "mail.example.org"}, "web": {"base_url": base_url}})
    with pytest.raises(ConfigError) as caught:
        check_mail_links(config)
    message = str(caught.value)
    assert message.startswith(f"[web] base_url = {base_url!r}") and "\n" not in message
    assert "unsubscribe" in message


@pytest.mark.parametrize(
    "base_url",
    [
        "https://digest.example.org",
        "http://news.example.com:8080/digest",
        "https://203.0.113.0.nip.io",
    ],
)
def test_public_base_urls_pass(base_url: str) -> None:
    config = config_from_dict({"smtp": {"host": "mail.example.org"}, "web": {"base_url": base_url}})
    check_mail_links(config)


def test_without_a_mail_server_the_outbox_needs_no_public_links() -> None:
    check_mail_links(config_from_dict({}))  # the defaults: localhost, outbox


def cli_config(tmp_path: Path, smtp: SmtpServer, base_url: str | None) -> Path:
    web = f'[web]\nbase_url = "{base_url}"\n' if base_url else ""
    path = tmp_path / "digest.toml"
    path.write_text(
        f'[storage]\nstate_dir = "{tmp_path / "state"}"\n[digest]\nsend_time = "00:00"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n{web}'
    )
    return path


@pytest.mark.parametrize(
    "command", [("send",), ("smtp", "check", "--to", "x@example.org"), ("run",), ("web",)]
)
def test_send_run_smtp_check_and_web_refuse_with_one_line_and_send_nothing(
    tmp_path: Path, smtp_server: SmtpServer, make_config: Any, command: tuple[str, ...]
) -> None:
    config = make_config()
    with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
        seed_insights(store, config)
        store.subscribers.add("reader@example.org", utcnow())
    path = cli_config(tmp_path, smtp_server, None)  # base_url left at its default
    result = CliRunner().invoke(cli, ["--config", str(path), *command])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: [web] base_url = 'http://localhost:8025' names localhost")
    assert smtp_server.mailbox.mail_commands == 0 and smtp_server.mailbox.connections == 0


def test_the_daily_send_job_itself_refuses(
    store: Store, make_config: Any, smtp_server: SmtpServer
) -> None:
    config = make_config(
        smtp={"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
        web={"base_url": "http://192.168.0.10:8025"},
    )
    seed_insights(store, config)
    store.subscribers.add("reader@example.org", utcnow())
    with pytest.raises(ConfigError, match="base_url"):
        send_digests(store, config)
    assert smtp_server.mailbox.mail_commands == 0
    with store.engine.connect() as conn:  # no ledger row for any date
        assert conn.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one() == 0


def test_an_idn_address_reaches_a_relay_without_smtputf8(store: Store, make_config: Any) -> None:
    relay = SmtpServer(smtputf8=False)
    try:
        config = make_config(smtp={"host": "127.0.0.1", "port": relay.port, "security": "none"})
        seed_insights(store, config)
        store.subscribers.add("leser@bücher.de", utcnow())
        report = send_digests(store, config)
    finally:
        relay.stop(hold_port=False)
    assert [r.outcome for r in report.results] == ["sent"]
    [(_sender, recipients, options)] = relay.mailbox.envelopes
    assert recipients == ["leser@xn--bcher-kva.de"] and "SMTPUTF8" not in options
    [message] = relay.mailbox.messages
    assert message["To"] == "leser@xn--bcher-kva.de"
