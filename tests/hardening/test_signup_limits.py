"""Sign-up limits that hold against a determined sender, over real HTTP on SQLite and
PostgreSQL: spellings of one mailbox share its allowance, requests that arrive at the
same moment cannot slip past a limit, and an IPv6 customer is their /64."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from digest.store import Store
from digest.web.csrf import client_key
from tests.support.smtpserver import SmtpServer
from tests.support.web import SignupSite, form_token, serve_web

pytestmark = pytest.mark.hardening


@pytest.fixture
def site(store: Store, make_config: Any, smtp_server: SmtpServer) -> Iterator[SignupSite]:
    config = make_config(
        smtp={"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
        web={"signups_per_client": 1000},
    )
    with serve_web(store, config) as base:
        yield SignupSite(store, config, base, smtp_server.mailbox)


def sign_up(client: httpx.Client, token: str, email: str) -> int:
    data = {"email": email, "timezone": "UTC", "send_time": "07:00", "csrf_token": token}
    return client.post("/subscribe", data=data).status_code


def test_spellings_of_one_mailbox_are_one_subscriber_and_share_three_emails(
    site: SignupSite,
) -> None:
    spellings = [
        "Victim@Example.org",
        "VICTIM@example.org",
        "vIctim@EXAMPLE.ORG",
        "victim+news@example.org",
        "victim+1@example.org",
        "victim@example.org",
    ]
    with httpx.Client(base_url=site.base) as client:
        token = form_token(client)
        codes = [sign_up(client, token, address) for address in spellings]
    assert codes == [200, 200, 200, 429, 429, 429]
    assert len(site.mailbox.messages) == 3, "three emails a day to one inbox, however spelled"
    mailboxes = {
        s.email.lower().replace("+news", "").replace("+1", "")
        for s in site.store.subscribers.list()
    }
    assert mailboxes == {"victim@example.org"}
    assert len([s for s in site.store.subscribers.list() if "+" not in s.email]) == 1, (
        "the case variants are one subscriber"
    )


def test_gmail_dots_and_idn_spellings_are_one_inbox(site: SignupSite) -> None:
    with httpx.Client(base_url=site.base) as client:
        token = form_token(client)
        dots = [
            sign_up(client, token, a)
            for a in (
                "v.i.c.t.i.m@gmail.com",
                "vic.tim@gmail.com",
                "victim@googlemail.com",
                "VICTIM@gmail.com",
                "victi.m@gmail.com",
            )
        ]
        idn = [
            sign_up(client, token, a)
            for a in ("x@bücher.de", "x@xn--bcher-kva.de", "X@BÜCHER.DE", "x+a@bücher.de")
        ]
    assert dots == [200, 200, 200, 200, 429], "googlemail.com is its own domain"
    assert idn == [200, 200, 200, 429]
    idn_rows = [
        s for s in site.store.subscribers.list() if "cher" in s.email and "+" not in s.email
    ]
    assert len(idn_rows) == 1, "an IDN domain and its punycode are one mailbox"


def race(site: SignupSite, emails: list[str]) -> list[int]:
    """Post every sign-up at the same moment, one thread each, one shared browser cookie."""
    with httpx.Client(base_url=site.base) as client:
        token = form_token(client)
        cookies = dict(client.cookies)
    start = threading.Barrier(len(emails))
    codes: list[int] = [0] * len(emails)

    def post(n: int) -> None:
        with httpx.Client(base_url=site.base, cookies=cookies, timeout=60) as mine:
            start.wait()
            codes[n] = sign_up(mine, token, emails[n])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(len(emails))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


def test_two_dozen_simultaneous_sign_ups_for_one_address_send_three_emails(
    site: SignupSite,
) -> None:
    codes = race(site, ["target@example.org"] * 24)
    assert sorted(codes) == [200] * 3 + [429] * 21
    assert len(site.mailbox.to("target@example.org")) == 3
    assert len(site.store.subscribers.list()) == 1


def test_two_dozen_simultaneous_sign_ups_from_one_client_stop_at_its_limit(
    store: Store, make_config: Any, smtp_server: SmtpServer
) -> None:
    config = make_config(
        smtp={"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
        web={"signups_per_client": 20},
    )
    with serve_web(store, config) as base:
        codes = race(
            SignupSite(store, config, base, smtp_server.mailbox),
            [f"r{n}@example.org" for n in range(24)],
        )
    assert sorted(codes) == [200] * 20 + [429] * 4
    assert len(smtp_server.mailbox.messages) == 20
    assert len(store.subscribers.list()) == 20


def test_a_failed_confirmation_email_does_not_use_up_the_allowance(site: SignupSite) -> None:
    site.mailbox.refuse["flaky@example.org"] = "451 4.3.0 try again later"
    with httpx.Client(base_url=site.base) as client:
        token = form_token(client)
        failed = [sign_up(client, token, "flaky@example.org") for _ in range(4)]
        site.mailbox.refuse.clear()
        later = [sign_up(client, token, "flaky@example.org") for _ in range(4)]
    assert failed == [503] * 4 and later == [200, 200, 200, 429]


def test_an_ipv6_customer_is_one_client_per_64() -> None:
    key = b"k" * 32
    home = [client_key(key, a) for a in ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe")]
    neighbour = client_key(key, "2001:db8:1:3::1")
    assert home[0] == home[1] != neighbour
    assert client_key(key, "::ffff:192.0.2.7") == client_key(key, "192.0.2.7"), "IPv4-mapped"
    assert client_key(key, "192.0.2.7") != client_key(key, "192.0.2.8"), "IPv4 stays per address"
