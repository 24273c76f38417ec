"""A subscription's life under abuse, over real HTTP: malformed fields, planted and stale
CSRF cookies, expired and used links, and removal. Every page tells the truth about
where the subscription stands; nothing malformed changes anything or answers 500."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from digest.cli import cli
from digest.core.config import Config
from digest.jobs import utcnow
from digest.store import Store
from digest.store.schema import signups, subscribers
from digest.store.subscriber_repo import new_token
from digest.web import csrf
from tests.support.web import form_token, serve_web

DATABASES = ("sqlite",)  # pages and fields, not the database: one backend is enough

pytestmark = pytest.mark.hardening
CONFIRM = re.compile(r"/confirm/([A-Za-z0-9_-]+)")


@pytest.fixture
def site(make_config: Any, caplog: pytest.LogCaptureFixture) -> Iterator[tuple[Store, Config, str]]:
    config = make_config()  # no SMTP host: mail lands in the outbox
    caplog.set_level(logging.ERROR, logger="digest.web")
    with Store(config.database_url) as store, serve_web(store, config) as base:
        store.feeds.add("https://shows.example/a.xml", utcnow(), title="A Show")
        yield store, config, base
    assert not [r for r in caplog.records if r.name == "digest.web"], "no request failed (500)"


def outbox(config: Config) -> list[Path]:
    folder = config.state_dir / "outbox"
    return sorted(folder.rglob("*.eml")) if folder.exists() else []


def signup_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(signups)).scalar_one())


GOOD = {"email": "ok@example.org", "timezone": "UTC", "send_time": "07:00"}
ARABIC_DIGITS = "١٧٦٤٦٦١٣٤٤"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"send_time": "07:00\n"}, "HH:MM"),
        ({"send_time": "٠٧:٣٠"}, "HH:MM"),  # digits, but not ASCII ones
        ({"send_time": "24:00"}, "HH:MM"),
        ({"send_time": "07:00:00"}, "HH:MM"),
        ({"timezone": "Europe/Berlin" * 400}, "longer than"),
        ({"timezone": "Europe/Berlin" * 100}, "not one of the time zones offered"),
        ({"timezone": "../../../../etc/passwd"}, "not one of the time zones offered"),
        ({"timezone": "Europe/Berlin\n"}, "not one of the time zones offered"),
        ({"timezone": "Mars/Olympus"}, "not one of the time zones offered"),
        ({"email": "a" * 10_000 + "@example.org"}, "longer than"),
        ({"email": ["a@example.org", "b@example.org"]}, "more than once"),
        ({"email": "a@example.org\x00"}, "line break"),
        ({"show": "https://shows.example/" + "x" * 3000}, "characters"),
        ({"show": "https://shows.example/a.xml\n"}, "not one of the shows"),
        ({"send_time": ["07:00", "08:00"]}, "more than once"),
        ({"website": ["", ""]}, "more than once"),
    ],
)
def test_every_malformed_field_is_a_calm_400_that_changes_nothing(
    site: Any, fields: dict[str, Any], says: str
) -> None:
    store, config, base = site
    with httpx.Client(base_url=base) as client:
        data = {**GOOD, **fields, "csrf_token": form_token(client)}
        answer = client.post("/subscribe", data=data)
    assert answer.status_code == 400, answer.text
    assert says in answer.text and 'class="error"' in answer.text
    assert 'name="csrf_token"' in answer.text, "the form again, ready to correct"
    assert store.subscribers.list() == [] and signup_rows(store) == 0 and outbox(config) == []


@pytest.mark.parametrize(
    "token",
    [
        f"{ARABIC_DIGITS}.{'0' * 40}",  # int() would read these digits
        f"NOW.{'é' * 40}",  # compare_digest refuses non-ASCII str
        f"NOW.{'0' * 40}.{'0' * 40}",
        "",
        "." * 5000,
        f"-NOW.{'0' * 40}",
    ],
)
def test_malformed_csrf_tokens_are_a_403_never_a_500(site: Any, token: str) -> None:
    store, config, base = site
    token = token.replace("NOW", str(int(time.time())))  # collected once, run any time
    with httpx.Client(base_url=base) as client:
        form_token(client)
        answer = client.post("/subscribe", data={**GOOD, "csrf_token": token})
    assert answer.status_code == 403 and "nothing was changed" in answer.text
    assert store.subscribers.list() == [] and outbox(config) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "multipart/form-data; boundary=xx",
            b'--xx\r\nContent-Disposition: form-data; name="email"; filename="a.txt"\r\n\r\nhi\r\n--xx--\r\n',
        ),
        ("multipart/form-data; boundary=xx", b"--xx\r\nnot a part at all"),
        ("multipart/form-data", b"email=a@example.org"),
        ("application/x-www-form-urlencoded", b"&".join(b"f%d=1" % n for n in range(300))),
        ("application/json", b'{"email": "a@example.org"}'),
        ("application/x-www-form-urlencoded", b"\xff\xfe\x00email=\x80"),
        ("application/x-www-form-urlencoded", b"email=%FF%FE%00@example.org&csrf_token=%FF"),
    ],
)
def test_bodies_that_are_not_our_form_change_nothing(
    site: Any, content_type: str, body: bytes
) -> None:
    store, config, base = site
    with httpx.Client(base_url=base) as client:
        form_token(client)
        answer = client.post("/subscribe", content=body, headers={"content-type": content_type})
    assert answer.status_code in (400, 403), answer.text
    assert store.subscribers.list() == [] and outbox(config) == []


def test_the_preferences_page_refuses_malformed_fields_and_keeps_the_choices(site: Any) -> None:
    store, _, base = site
    reader = store.subscribers.add("p@example.org", utcnow(), send_time="06:00")
    path = f"/subscription/{reader.unsubscribe_token}"
    bad_forms = [
        {"action": ["save", "pause"]},
        {"action": "delete"},
        {"action": "save", "timezone": "x" * 500},
        {"action": "save", "send_time": "6:00"},
        {"action": "save", "show": "https://elsewhere.example/feed.xml"},
    ]
    with httpx.Client(base_url=base) as client:
        for fields in bad_forms:
            answer = client.post(path, data={**fields, "csrf_token": form_token(client, path)})
            assert answer.status_code == 400 and "Nothing was changed" in answer.text, fields
    after = store.subscribers.get("p@example.org")
    assert (after.status, after.send_time, after.timezone, after.shows) == (
        "active",
        "06:00",
        None,
        None,
    )


def test_a_planted_csrf_cookie_is_replaced_not_adopted(site: Any) -> None:
    store, _, base = site
    planted = "attacker-chosen-nonce-000"
    with httpx.Client(base_url=base, cookies={csrf.COOKIE: planted}) as client:
        page = client.get("/subscribe")
        issued = page.cookies.get(csrf.COOKIE)
        assert issued and issued != planted, "the server sets a cookie of its own"
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        ok = client.post("/subscribe", data={**GOOD, "csrf_token": token})
    assert ok.status_code == 200, "the server's cookie and token work together"
    with httpx.Client(base_url=base, cookies={csrf.COOKIE: planted}) as attacker:
        answer = attacker.post(
            "/subscribe", data={**GOOD, "email": "x@example.org", "csrf_token": token}
        )
    assert answer.status_code == 403, "a token is worth nothing beside a planted cookie"
    assert [s.email for s in store.subscribers.list()] == ["ok@example.org"]


def test_an_expired_but_correctly_signed_token_is_refused(site: Any) -> None:
    store, config, base = site
    key = (config.state_dir / "web-secret").read_bytes().strip()
    with httpx.Client(base_url=base) as client:
        fresh = form_token(client)
        nonce = csrf.cookie_nonce(key, client.cookies.get(csrf.COOKIE))
        assert nonce and csrf.check(key, client.cookies.get(csrf.COOKIE), fresh, time.time()), (
            "the key read here is the site's"
        )
        now = time.time()
        for issued in (now - csrf.MAX_AGE - 60, now + 3600):  # a day old; from the future
            answer = client.post(
                "/subscribe", data={**GOOD, "csrf_token": csrf.token_for(key, nonce, issued)}
            )
            assert answer.status_code == 403
        within = client.post(
            "/subscribe", data={**GOOD, "csrf_token": csrf.token_for(key, nonce, now - 3600)}
        )
    assert within.status_code == 200, "an hour-old form is fine"
    assert [s.email for s in store.subscribers.list()] == ["ok@example.org"]


def test_an_https_site_binds_its_cookie_to_the_host(make_config: Any) -> None:
    config = make_config(web={"base_url": "https://digest.example.org"})
    with Store(config.database_url) as store, serve_web(store, config) as base:
        page = httpx.get(f"{base}/subscribe")
    header = page.headers["set-cookie"]
    assert header.startswith(f"{csrf.SECURE_COOKIE}=")
    attributes = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
    assert {"secure", "path", "httponly", "samesite"} <= attributes and "domain" not in attributes
    assert "path=/" in header.lower()


def confirm_link(config: Config, address: str) -> str:
    [mail] = [p for p in outbox(config) if p.name == f"{address}.eml"]
    return CONFIRM.search(mail.read_text()).group(1)  # type: ignore[union-attr]


def post_confirm(client: httpx.Client, link: str) -> httpx.Response:
    token = form_token(client, f"/confirm/{link}")
    return client.post(f"/confirm/{link}", data={"csrf_token": token})


def test_an_expired_link_is_expired_used_or_not(site: Any) -> None:
    store, config, base = site
    with httpx.Client(base_url=base) as client:
        client.post("/subscribe", data={**GOOD, "csrf_token": form_token(client)})
        link = confirm_link(config, "ok@example.org")
        assert post_confirm(client, link).status_code == 200
        with store.engine.begin() as conn:
            conn.execute(signups.update().values(expires_at=utcnow() - timedelta(minutes=1)))
        for answer in (client.get(f"/confirm/{link}"), client.post(f"/confirm/{link}", data={})):
            assert answer.status_code == 404 and "expired" in answer.text


def test_a_used_link_tells_the_truth_after_an_unsubscribe(site: Any) -> None:
    store, config, base = site
    with httpx.Client(base_url=base) as client:
        client.post("/subscribe", data={**GOOD, "csrf_token": form_token(client)})
        link = confirm_link(config, "ok@example.org")
        assert "You are subscribed" in post_confirm(client, link).text
        reader = store.subscribers.get("ok@example.org")
        assert client.post(f"/unsubscribe/{reader.unsubscribe_token}").status_code == 200
        shown = client.get(f"/confirm/{link}")
        replayed = client.post(f"/confirm/{link}", data={"csrf_token": form_token(client)})
    for page in (shown, replayed):
        assert page.status_code == 200 and "already used" in page.text
        assert "is not subscribed" in page.text and "gets the" not in page.text
        assert 'action="/confirm/' not in page.text, "no Confirm button on a used link"
    assert store.subscribers.get("ok@example.org").status == "unsubscribed"


def test_removing_an_address_deletes_everything_that_names_it(site: Any, tmp_path: Path) -> None:
    store, config, base = site
    with httpx.Client(base_url=base) as client:
        for spelling in ("Gone@Example.org", "gone@example.org"):
            client.post(
                "/subscribe", data={**GOOD, "email": spelling, "csrf_token": form_token(client)}
            )
        link = confirm_link(config, "gone@example.org")
        post_confirm(client, link)
        reader = store.subscribers.get("gone@example.org")
        file = tmp_path / "digest.toml"
        file.write_text(f'[storage]\nstate_dir = "{config.state_dir}"\n')
        result = CliRunner().invoke(
            cli, ["--config", str(file), "subscribers", "remove", "GONE@example.org"]
        )
        assert result.exit_code == 0, result.output
        pages = [
            client.get(f"/confirm/{link}"),
            client.get(f"/subscription/{reader.unsubscribe_token}"),
            client.get(f"/unsubscribe/{reader.unsubscribe_token}"),
            client.post(f"/unsubscribe/{reader.unsubscribe_token}"),
        ]
    assert [p.status_code for p in pages] == [404, 404, 404, 404]
    assert all("gone@example.org" not in p.text.lower() for p in pages)
    assert store.subscribers.list() == [] and signup_rows(store) == 0
    assert not [p for p in outbox(config) if "gone" in p.name.lower()], "its outbox mail too"


def test_re_signing_up_an_active_reader_keeps_their_choices(site: Any) -> None:
    store, config, base = site
    reader = store.subscribers.add(
        "keep@example.org", utcnow(), send_time="06:00", timezone="Asia/Tokyo"
    )
    with httpx.Client(base_url=base) as client:
        data = {
            "email": "KEEP@example.org",
            "timezone": "UTC",
            "send_time": "23:00",
            "show": "https://shows.example/a.xml",
        }
        assert (
            client.post("/subscribe", data={**data, "csrf_token": form_token(client)}).status_code
            == 200
        )
    after = store.subscribers.get("keep@example.org")
    assert (after.email, after.send_time, after.timezone, after.shows) == (
        "keep@example.org",
        "06:00",
        "Asia/Tokyo",
        None,
    )
    [mail] = outbox(config)
    text = mail.read_text()
    assert f"/subscription/{reader.unsubscribe_token}" in text and "/confirm/" not in text
    assert "nothing was\nchanged" in text or "nothing was changed" in text


def test_no_token_starts_with_a_dash_and_old_ones_still_unsubscribe(
    site: Any, tmp_path: Path
) -> None:
    assert not [t for t in (new_token() for _ in range(20_000)) if t.startswith("-")]
    store, config, _ = site
    reader = store.subscribers.add("dash@example.org", utcnow())
    old = "-" + reader.unsubscribe_token[1:]  # as about one in 64 older tokens began
    with store.engine.begin() as conn:
        conn.execute(subscribers.update().values(unsubscribe_token=old))
    file = tmp_path / "digest.toml"
    file.write_text(f'[storage]\nstate_dir = "{config.state_dir}"\n')
    result = CliRunner().invoke(cli, ["--config", str(file), "subscribers", "unsubscribe", old])
    assert result.exit_code == 0, result.output
    assert store.subscribers.get("dash@example.org").status == "unsubscribed"
