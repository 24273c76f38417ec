"""Sign-up with double opt-in, preferences and the archive feed, over real HTTP (uvicorn)
with confirmation mail through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import feedparser
import pytest

from digest.jobs import send_digests, utcnow
from digest.store import Store
from tests.support.seed import SCRIPTS, seed_insights
from tests.support.smtpserver import SmtpServer
from tests.support.web import SignupSite, form_token, serve_web

DATABASES = ("sqlite",)  # the sign-up story, not the database: one backend is enough


@pytest.fixture
def site(store: Store, make_config: Any, smtp_server: SmtpServer) -> Iterator[SignupSite]:
    config = make_config(
        smtp={"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
    )
    seed_insights(store, config, show="Alpha Hour", scripts=SCRIPTS[:2])
    seed_insights(store, config, show="Beta Talk", scripts=SCRIPTS[2:])
    feeds = {f.title: f for f in store.feeds.list()}
    with serve_web(store, config) as base:
        yield SignupSite(store, config, base, smtp_server.mailbox, feeds)


def test_double_opt_in_from_form_to_active_with_the_chosen_show(site: SignupSite) -> None:
    alpha = site.feeds["Alpha Hour"]
    with site.browser() as client:
        page = client.get("/subscribe")
        assert f'name="show" value="{alpha.url}"' in page.text
        assert 'name="email"' in page.text and 'name="timezone"' in page.text
        answer = site.sign_up(client, "reader@example.org", alpha.url)
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        reader = site.store.subscribers.get("reader@example.org")
        assert reader.status == "pending"
        send_digests(site.store, site.config)
        assert not [
            m
            for m in site.mailbox.to("reader@example.org")
            if "Digest" in m["Subject"] and "Confirm" not in m["Subject"]
        ], "pending readers get no digest"

        [token] = site.confirm_links("reader@example.org")
        [mail] = site.mailbox.to("reader@example.org")
        assert mail["Subject"] == "Confirm your Podcast Digest subscription"
        assert "List-Unsubscribe" not in mail, "not a list message: the reader has not joined"
        ask = client.get(f"/confirm/{token}")
        assert ask.status_code == 200 and 'action="/confirm/' in ask.text
        assert site.store.subscribers.get("reader@example.org").status == "pending", (
            "a GET (a mail scanner following the link) confirms nothing"
        )
        done = client.post(
            f"/confirm/{token}", data={"csrf_token": form_token(client, f"/confirm/{token}")}
        )
        assert done.status_code == 200 and "You are subscribed" in done.text
    reader = site.store.subscribers.get("reader@example.org")
    assert (reader.status, reader.shows, reader.timezone, reader.send_time) == (
        "active",
        (alpha.id,),
        "Europe/Berlin",
        "06:30",
    )


def test_the_answer_never_tells_whether_an_address_is_known(site: SignupSite) -> None:
    active = site.store.subscribers.add("active@example.org", utcnow())
    gone = site.store.subscribers.add("gone@example.org", utcnow())
    site.store.subscribers.set_status(gone.id, "unsubscribed")
    pages = {}
    with site.browser() as client:
        site.sign_up(client, "pending@example.org")
        for address in (
            "new@example.org",
            "pending@example.org",
            "active@example.org",
            "gone@example.org",
        ):
            answer = site.sign_up(client, address)
            pages[address] = (answer.status_code, answer.text.replace(address, "ADDRESS"))
    assert len(set(pages.values())) == 1, "new, pending, active and unsubscribed look the same"
    for address in ("new@example.org", "pending@example.org", "gone@example.org"):
        assert site.confirm_links(address), f"{address} got a confirmation link"
    assert site.store.subscribers.get("gone@example.org").status == "unsubscribed", (
        "re-signing up changes nothing until the link is used"
    )
    # An address that already reads gets its own preferences link instead: one email,
    # and no link that would let whoever filled in the form change the reader's choices.
    [mail] = site.mailbox.to("active@example.org")
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert mail["Subject"] == "You already get Podcast Digest"
    assert f"/subscription/{active.unsubscribe_token}" in body and "/confirm/" not in body


def test_an_unsubscribed_reader_signs_up_again_with_new_choices(site: SignupSite) -> None:
    beta = site.feeds["Beta Talk"]
    old = site.store.subscribers.add("back@example.org", utcnow())
    site.store.subscribers.set_status(old.id, "unsubscribed")
    with site.browser() as client:
        site.sign_up(client, "back@example.org", beta.url)
        [token] = site.confirm_links("back@example.org")
        csrf = form_token(client, f"/confirm/{token}")
        assert client.post(f"/confirm/{token}", data={"csrf_token": csrf}).status_code == 200
        again = client.post(f"/confirm/{token}", data={"csrf_token": csrf})
        assert again.status_code == 200, "a used link answers calmly"
    back = site.store.subscribers.get("back@example.org")
    assert (back.status, back.shows, back.unsubscribe_token) == (
        "active",
        (beta.id,),
        old.unsubscribe_token,
    )


def test_preferences_change_shows_time_and_pause(site: SignupSite) -> None:
    alpha, beta = site.feeds["Alpha Hour"], site.feeds["Beta Talk"]
    reader = site.store.subscribers.add("pref@example.org", utcnow(), shows=(alpha.id,))
    path = f"/subscription/{reader.unsubscribe_token}"
    with site.browser() as client:
        page = client.get(path)
        assert re.search(rf'value="{re.escape(alpha.url)}" checked', page.text)
        assert not re.search(rf'value="{re.escape(beta.url)}" checked', page.text)
        saved = client.post(
            path,
            data={
                "action": "save",
                "show": [beta.url],
                "timezone": "America/New_York",
                "send_time": "18:15",
                "csrf_token": form_token(client, path),
            },
        )
        assert saved.status_code == 200 and "Saved" in saved.text
        changed = site.store.subscribers.get("pref@example.org")
        assert (changed.shows, changed.timezone, changed.send_time) == (
            (beta.id,),
            "America/New_York",
            "18:15",
        )
        everything = client.post(
            path,
            data={
                "action": "save",
                "timezone": "UTC",
                "send_time": "07:00",
                "csrf_token": form_token(client, path),
            },
        )
        assert everything.status_code == 200
        assert site.store.subscribers.get("pref@example.org").shows is None, "none ticked: all"
        bad = client.post(
            path,
            data={
                "action": "save",
                "show": ["https://evil.example/feed"],
                "timezone": "UTC",
                "send_time": "07:00",
                "csrf_token": form_token(client, path),
            },
        )
        assert bad.status_code == 400 and "not one of the shows" in bad.text
        assert site.store.subscribers.get("pref@example.org").shows is None
        client.post(path, data={"action": "pause", "csrf_token": form_token(client, path)})
        assert site.store.subscribers.get("pref@example.org").status == "paused"
        assert "Resume" in client.get(path).text
        client.post(path, data={"action": "resume", "csrf_token": form_token(client, path)})
        assert site.store.subscribers.get("pref@example.org").status == "active"


def test_topics_and_cadence_from_the_sign_up_form_to_the_preferences_page(site: SignupSite) -> None:
    with site.browser() as client:
        assert 'name="topics"' in client.get("/subscribe").text
        site.sign_up(
            client, "topical@example.org", topics='"Battery Storage" grid -crypto', topics_only="1"
        )
        [token] = site.confirm_links("topical@example.org")
        path = f"/confirm/{token}"
        client.post(path, data={"csrf_token": form_token(client, path)})
    reader = site.store.subscribers.get("topical@example.org")
    assert (reader.status, reader.topics, reader.topics_only) == (
        "active",
        '"battery storage" grid -crypto',
        True,
    )
    path = f"/subscription/{reader.unsubscribe_token}"
    with site.browser() as client:
        page = client.get(path).text
        assert 'value="&#34;battery storage&#34; grid -crypto"' in page, "shown, escaped"
        assert re.search(r'name="topics_only" value="1" checked', page)

        def save(**fields: str) -> Any:
            data = {"action": "save", "timezone": "UTC", "send_time": "07:00", **fields}
            return client.post(path, data={**data, "csrf_token": form_token(client, path)})

        assert save(topics="tides", cadence="weekly", weekday="friday").status_code == 200
        changed = site.store.subscribers.get("topical@example.org")
        assert (changed.topics, changed.topics_only) == ("tides", False), "unticked: topics first"
        assert (changed.cadence, changed.weekday) == ("weekly", 4)
        page = client.get(path).text
        assert re.search(r'name="cadence" value="weekly" checked', page)
        assert '<option value="friday" selected>' in page
        assert "every Friday at 07:00" in page
        for hostile, problem in (
            ({"topics": "x" * 10_000}, "longer than 2000 characters"),
            ({"topics": "x " * 400}, "at most 500 characters"),
            ({"topics": "", "topics_only": "1"}, "needs at least one topic"),
            ({"topics": "tides", "topics_only": "yes please"}, "is a checkbox"),
            ({"topics": "tides", "cadence": "hourly"}, "daily or weekly"),
            ({"topics": "tides", "cadence": "weekly", "weekday": "someday"}, "a day of the week"),
            ({"topics": "<script>alert(1)</script>"}, ""),
        ):
            answer = save(**hostile)
            if problem:
                assert answer.status_code == 400 and problem in answer.text, answer.text[-500:]
                assert site.store.subscribers.get("topical@example.org").topics == "tides"
            else:
                assert answer.status_code == 200 and "<script>" not in answer.text


def test_archive_feed_is_valid_atom_with_no_personal_data(site: SignupSite) -> None:
    site.store.subscribers.add("reader@example.org", utcnow())
    send_digests(site.store, site.config)
    with site.browser() as client:
        response = client.get("/archive/feed.xml")
        archive = client.get("/archive")
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert parsed.version == "atom10" and not parsed.bozo
    [day] = site.store.digests.dates()  # the send's date, even if midnight passed since
    [entry] = parsed.entries
    assert entry.link == f"{site.config.web.base_url}/archive/{day}", "public URLs, as configured"
    assert "Alpha Hour" in entry.summary or "Beta Talk" in entry.summary
    assert "reader@example.org" not in response.text
    assert 'href="/archive/feed.xml"' in archive.text
    [mail] = site.mailbox.to("reader@example.org")
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f'href="{site.config.web.base_url}/archive/feed.xml"' in html


def test_every_form_on_every_page_carries_a_csrf_token(site: SignupSite) -> None:
    reader = site.store.subscribers.add("forms@example.org", utcnow())
    with site.browser() as client:
        site.sign_up(client, "new@example.org")
        [confirm] = site.confirm_links("new@example.org")
        token = reader.unsubscribe_token
        for path in (
            "/subscribe",
            f"/confirm/{confirm}",
            f"/subscription/{token}",
            f"/unsubscribe/{token}",
        ):
            page = client.get(path).text
            forms = re.findall(r"<form.*?</form>", page, re.S)
            assert forms, path
            for form in forms:
                assert re.search(r'name="csrf_token" value="\d+\.[0-9a-f]{40}"', form), (path, form)
