"""The sign-up form under attack, over real HTTP: forged forms, guessed and expired links,
markup in fields, bots, and a flood from one address. Each gets a clear page and
changes nothing (no row, no mail) beyond what the limits allow."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from digest.jobs import utcnow
from digest.store import Store
from digest.store.schema import signups
from tests.support.seed import seed_insights
from tests.support.web import form_token, serve_web

DATABASES = ("sqlite",)  # the form under attack, not the database: one backend is enough


@pytest.fixture
def site(make_config: Any, tmp_path: Any) -> Iterator[tuple[Store, Any, str]]:
    config = make_config()  # no SMTP host: confirmation mails land in the outbox
    with Store(config.database_url) as store:
        seed_insights(store, config)
        with serve_web(store, config) as base:
            yield store, config, base


def form(email: str, csrf: str | None, **extra: str) -> dict[str, str]:
    data = {"email": email, "timezone": "UTC", "send_time": "07:00", **extra}
    return data if csrf is None else {**data, "csrf_token": csrf}


def outbox(config: Any) -> list[Any]:
    folder = config.state_dir / "outbox" / "confirmations"
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(signups)).scalar_one())


def nothing_changed(store: Store, config: Any) -> None:
    assert rows(store) == 0 and store.subscribers.list() == [] and outbox(config) == []


def test_forms_without_a_valid_csrf_token_change_nothing(site: Any) -> None:
    store, config, base = site
    with httpx.Client(base_url=base) as client:
        good = form_token(client)
        missing = client.post("/subscribe", data=form("a@example.org", None))
        wrong = client.post("/subscribe", data=form("a@example.org", good[:-4] + "0000"))
        stale = client.post("/subscribe", data=form("a@example.org", "1000000000." + "0" * 40))
    with httpx.Client(base_url=base) as other:  # another browser: its own cookie
        form_token(other)
        stolen = other.post("/subscribe", data=form("a@example.org", good))
    cross_site = httpx.post(f"{base}/subscribe", data=form("a@example.org", good))  # no cookie
    for answer in (missing, wrong, stale, stolen, cross_site):
        assert answer.status_code == 403 and "nothing was changed" in answer.text
    nothing_changed(store, config)


def test_guessed_and_expired_confirmation_links_do_nothing(site: Any) -> None:
    store, config, base = site
    with httpx.Client(base_url=base) as client:
        assert (
            client.post("/subscribe", data=form("late@example.org", form_token(client))).status_code
            == 200
        )
        [mail] = outbox(config)
        link = re.search(r"/confirm/([A-Za-z0-9_-]+)", mail.read_text()).group(1)  # type: ignore[union-attr]
        with store.engine.begin() as conn:  # the link's 48 hours have passed
            conn.execute(signups.update().values(expires_at=utcnow() - timedelta(minutes=1)))
        csrf = form_token(client)
        for path in (f"/confirm/{link}", f"/confirm/{'A' * 32}", "/confirm/short"):
            assert client.get(path).status_code == 404
            answer = client.post(path, data={"csrf_token": csrf})
            assert answer.status_code == 404
        assert "expired" in client.get(f"/confirm/{link}").text
    assert store.subscribers.get("late@example.org").status == "pending"


def test_markup_and_junk_in_fields_are_refused_and_escaped(site: Any) -> None:
    store, config, base = site
    with httpx.Client(base_url=base) as client:
        csrf = form_token(client)
        script = client.post("/subscribe", data=form("<script>alert(1)</script>@example.org", csrf))
        assert script.status_code == 400 and "not a valid email address" in script.text
        assert "<script>" not in script.text and "&lt;script&gt;" in script.text
        header = client.post(
            "/subscribe", data=form("a@example.org\r\nBcc: all@evil.example", csrf)
        )
        zone = client.post("/subscribe", data=form("a@example.org", csrf, timezone="Mars/Olympus"))
        time = client.post("/subscribe", data=form("a@example.org", csrf, send_time="25:99"))
        show = client.post(
            "/subscribe", data=form("a@example.org", csrf, show="file:///etc/passwd")
        )
        for answer in (header, zone, time, show):
            assert answer.status_code == 400, answer.text
        huge = client.post(
            "/subscribe",
            content=b"email=" + b"a" * 200_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert huge.status_code == 413
        assert client.delete("/subscribe").status_code == 405
    nothing_changed(store, config)


def test_a_client_that_sends_only_the_address_gets_the_defaults(site: Any) -> None:
    store, _, base = site
    with httpx.Client(base_url=base) as client:
        answer = client.post(
            "/subscribe", data={"email": "min@example.org", "csrf_token": form_token(client)}
        )
    assert answer.status_code == 200
    reader = store.subscribers.get("min@example.org")
    assert (reader.status, reader.shows, reader.timezone, reader.send_time) == (
        "pending",
        None,
        None,
        None,
    )


def test_a_filled_honeypot_gets_the_usual_answer_and_nothing_else(site: Any) -> None:
    store, config, base = site
    with httpx.Client(base_url=base) as client:
        answer = client.post(
            "/subscribe",
            data=form("bot@example.org", form_token(client), website="http://spam.example"),
        )
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    nothing_changed(store, config)


def test_one_address_gets_at_most_three_confirmation_emails_a_day(site: Any) -> None:
    store, config, base = site
    with httpx.Client(base_url=base) as client:
        csrf = form_token(client)
        answers = [
            client.post("/subscribe", data=form("victim@example.org", csrf)) for _ in range(5)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert "confirmation emails" in answers[-1].text
    assert len(outbox(config)) == 1, "the outbox keeps the newest message per address"
    assert store.subscribers.mails_since("victim@example.org", utcnow() - timedelta(days=1)) == 3


def test_a_thousand_sign_ups_from_one_address_are_limited_and_nothing_breaks(site: Any) -> None:
    store, config, base = site
    codes: list[int] = []
    with httpx.Client(base_url=base) as client:
        csrf = form_token(client)
        for n in range(1000):
            codes.append(
                client.post("/subscribe", data=form(f"r{n}@example.org", csrf)).status_code
            )
        assert client.get("/subscribe").status_code == 200, "still serving"
    assert codes[:20] == [200] * 20 and set(codes[20:]) == {429}
    assert len(outbox(config)) == 20, "the outbox is not flooded"
    assert len(store.subscribers.list(status="pending")) == 20
    assert rows(store) == 20


def test_preferences_and_pages_need_the_token_and_the_form(site: Any) -> None:
    store, _, base = site
    reader = store.subscribers.add("r@example.org", utcnow())
    path = f"/subscription/{reader.unsubscribe_token}"
    with httpx.Client(base_url=base) as client:
        forged = client.post(path, data={"action": "pause"})
        assert forged.status_code == 403
        assert client.get(f"/subscription/{'B' * 32}").status_code == 404
        page = client.get(path)
    assert store.subscribers.get("r@example.org").status == "active"
    csp = page.headers["content-security-policy"]
    assert (
        "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    )
    assert page.headers["x-content-type-options"] == "nosniff"
    assert (
        "httponly" in page.headers["set-cookie"].lower()
        and "samesite=lax" in page.headers["set-cookie"].lower()
    )
