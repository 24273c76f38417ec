"""Readers choose their channels on the web: the sign-up form and the preferences page,
over real HTTP, with a real webhook receiver and the private feed read by feedparser.
The story of #26's "done when": a weekly, topic-filtered digest to a webhook and a
private feed, each arriving once; an email-only daily reader sees no change."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import feedparser
import httpx
import pytest

from digest.core.models import Endpoint
from digest.jobs import send_digests, utcnow
from digest.store import Store
from tests.support.seed import SCRIPTS, seed_insights
from tests.support.smtpserver import SmtpServer
from tests.support.web import SignupSite, form_token, serve_web
from tests.support.webhooks import receiving

DATABASES = ("sqlite",)  # the forms and channels, not the database


@contextmanager
def running(
    store: Store, make_config: Any, smtp: SmtpServer, **webhook: Any
) -> Iterator[SignupSite]:
    config = make_config(
        smtp={"host": "127.0.0.1", "port": smtp.port, "security": "none"},
        webhook={"timeout_seconds": 2.0, **webhook},
        voice={"enabled": False},  # the channels, not the audio (tests/test_voice.py)
    )
    seed_insights(store, config, show="Alpha Hour", scripts=SCRIPTS[:2])
    seed_insights(store, config, show="Beta Talk", scripts=SCRIPTS[2:])
    feeds = {f.title: f for f in store.feeds.list()}
    with serve_web(store, config) as base:
        yield SignupSite(store, config, base, smtp.mailbox, feeds)


@pytest.fixture
def site(store: Store, make_config: Any, smtp_server: SmtpServer) -> Iterator[SignupSite]:
    """Receivers on loopback allowed (the tests' receiver lives there)."""
    with running(store, make_config, smtp_server, allow_private_addresses=True) as found:
        yield found


@pytest.fixture
def strict(store: Store, make_config: Any, smtp_server: SmtpServer) -> Iterator[SignupSite]:
    """The default: webhooks must be public hosts."""
    with running(store, make_config, smtp_server) as found:
        yield found


def channels_of(site: SignupSite, email: str) -> list[Endpoint]:
    reader = site.store.subscribers.get(email)
    return site.store.endpoints.of([reader.id])[reader.id]


def confirm(site: SignupSite, client: httpx.Client, email: str) -> httpx.Response:
    [token] = site.confirm_links(email)
    path = f"/confirm/{token}"
    return client.post(path, data={"csrf_token": form_token(client, path)})


def save(client: httpx.Client, token: str, **fields: Any) -> httpx.Response:
    """The preferences form as a browser sends it: every field it shows."""
    path = f"/subscription/{token}"
    data = {
        "timezone": "Europe/Berlin",
        "send_time": "06:30",
        "channels_shown": "1",
        "action": "save",
        "csrf_token": form_token(client, path),
        **fields,
    }
    return client.post(path, data=data)


def test_a_weekly_topic_reader_on_a_webhook_and_a_feed_gets_each_once(site: SignupSite) -> None:
    start = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    day = start + timedelta(days=3)
    weekday = day.strftime("%A").lower()
    with receiving() as receiver, site.browser() as client:
        site.sign_up(client, "daily@example.org")  # the original form's fields only
        confirm(site, client, "daily@example.org")
        answer = site.sign_up(
            client,
            "hooks@example.org",
            topics="model -crypto",
            topics_only="1",
            cadence="weekly",
            weekday=weekday,
            channels_shown="1",
            channel=["webhook", "feed"],
            webhook_url=receiver.url(),
            webhook_format="json",
        )
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        assert channels_of(site, "hooks@example.org") == [
            Endpoint(0, site.store.subscribers.get("hooks@example.org").id, "email")
        ], "nothing is made before the link is used"
        done = confirm(site, client, "hooks@example.org")
        assert done.status_code == 200 and "private feed link and webhook secret" in done.text
        reader = site.store.subscribers.get("hooks@example.org")
        kinds = {e.kind: e for e in channels_of(site, "hooks@example.org")}
        assert sorted(kinds) == ["feed", "webhook"], "no email: the reader did not tick it"
        hook, feed = kinds["webhook"], kinds["feed"]
        assert hook.target == receiver.url() and hook.format == "json"
        receiver.secret = hook.secret
        page = client.get(f"/subscription/{reader.unsubscribe_token}")
        assert hook.secret in page.text, "the reader's receiver needs the signing secret"
        assert f"{site.config.web.base_url}/feed/{feed.secret}.xml" in page.text
        assert re.search(r'value="webhook" checked', page.text)
        assert not re.search(r'value="email" checked', page.text)

        for n in range(8):  # a week and a day of noon sends, one repeated
            send_digests(site.store, site.config, now=start + timedelta(days=n))
        send_digests(site.store, site.config, now=day)

    assert (reader.cadence, reader.topics, reader.topics_only) == ("weekly", "model -crypto", True)
    [post] = receiver.received
    assert post.valid and not post.duplicate
    assert post.data["date"] == day.date().isoformat()
    assert post.data["insights"] and len(post.data["insights"]) <= 7
    frozen = site.store.digests.get(day.date().isoformat(), reader.selection)
    assert frozen is not None and reader.selection.endswith("|w")
    with httpx.Client(base_url=site.base) as http:
        parsed = feedparser.parse(http.get(f"/feed/{feed.secret}.xml").content)
    assert not parsed.bozo and len(parsed.entries) == 1, "one edition, published once"

    def digests(address: str) -> list[Any]:
        return [m for m in site.mailbox.to(address) if "Confirm" not in m["Subject"]]

    assert digests("hooks@example.org") == [], "no email for a reader who chose none"
    days = [m["Subject"].split(",")[1].split(":")[0].strip() for m in digests("daily@example.org")]
    assert days and days[0] == start.strftime("%a %d %b"), "the email-only daily reader as before"
    assert len(set(days)) == len(days), "one email a day at most"
    assert channels_of(site, "daily@example.org")[0].id == 0, "no channel rows were made"


def test_the_preferences_page_changes_channels_and_refuses_bad_ones(site: SignupSite) -> None:
    reader = site.store.subscribers.add("prefs@example.org", utcnow())
    token = reader.unsubscribe_token
    with receiving() as receiver, site.browser() as client:
        added = save(client, token, channel=["email", "webhook"], webhook_url=receiver.url())
        assert added.status_code == 200 and "Saved" in added.text
        [email, hook] = channels_of(site, "prefs@example.org")
        assert (email.kind, hook.kind) == ("email", "webhook")

        kept = save(client, token, channel=["email", "webhook"], webhook_url=receiver.url())
        assert kept.status_code == 200
        assert channels_of(site, "prefs@example.org") == [email, hook], "same URL: same secret"

        slack = save(
            client, token, channel=["webhook"], webhook_url=receiver.url(), webhook_format="slack"
        )
        assert slack.status_code == 200
        [moved] = channels_of(site, "prefs@example.org")
        assert moved.format == "slack" and moved.secret != hook.secret, "email is gone"

        before = channels_of(site, "prefs@example.org")
        refusals = {
            "nothing ticked": {},
            "a webhook without its URL": {"channel": ["webhook"], "webhook_url": " "},
            "a file URL": {"channel": ["webhook"], "webhook_url": "file:///etc/passwd"},
            "an unknown channel": {"channel": ["email", "pigeon"]},
            "an unknown format": {"channel": ["feed"], "webhook_format": "xml"},
            "two URLs": {"channel": ["webhook"], "webhook_url": [receiver.url(), receiver.url()]},
            "a URL of 3000 characters": {
                "channel": ["webhook"],
                "webhook_url": "https://example.com/" + "a" * 3000,
            },
        }
        for case, fields in refusals.items():
            answer = save(client, token, topics="changed", **fields)
            assert answer.status_code == 400, case
            assert "Nothing was changed" in answer.text, case
            assert channels_of(site, "prefs@example.org") == before, case
            assert site.store.subscribers.get("prefs@example.org").topics == "", (
                f"{case}: the other fields were not saved either"
            )

        old_form = client.post(  # the original fields only: channels stay as they are
            f"/subscription/{token}",
            data={"action": "save", "topics": "grid", "csrf_token": form_token(client)},
        )
        assert old_form.status_code == 200
        assert channels_of(site, "prefs@example.org") == before
        assert site.store.subscribers.get("prefs@example.org").topics == "grid"

        site.store.endpoints.disable(moved.id, "the receiver answered 410 Gone", utcnow())
        page = client.get(f"/subscription/{token}")
        assert "Stopped: the receiver answered 410 Gone" in page.text
        again = save(
            client, token, channel=["webhook"], webhook_url=receiver.url(), webhook_format="slack"
        )
        assert again.status_code == 200
        [renewed] = channels_of(site, "prefs@example.org")
        assert renewed.disabled is None and renewed.secret != moved.secret, "ticked again: anew"


def test_a_strangers_sign_up_cannot_redirect_a_readers_digest(site: SignupSite) -> None:
    reader = site.store.subscribers.add("victim@example.org", utcnow())
    with receiving() as receiver, site.browser() as client:
        answer = site.sign_up(
            client,
            "victim@example.org",
            channels_shown="1",
            channel=["webhook"],
            webhook_url=receiver.url(),
        )
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        assert site.confirm_links("victim@example.org") == [], "they get their own page link"
        send_digests(site.store, site.config)
    assert receiver.received == []
    assert channels_of(site, "victim@example.org") == [Endpoint(0, reader.id, "email")]


def test_inward_webhooks_are_refused_on_both_forms(strict: SignupSite) -> None:
    site = strict
    with site.browser() as client:
        answer = site.sign_up(
            client,
            "inward@example.org",
            channels_shown="1",
            channel=["webhook"],
            webhook_url="http://127.0.0.1:9/hook",
        )
        assert answer.status_code == 400 and "webhook URL refused" in answer.text
        assert site.mailbox.to("inward@example.org") == [] and site.signup_rows() == 0
        reader = site.store.subscribers.add("inward@example.org", utcnow())
        for url in ("http://169.254.169.254/latest", "http://localhost:8080/", "http://[::1]/"):
            refused = save(client, reader.unsubscribe_token, channel=["webhook"], webhook_url=url)
            assert refused.status_code == 400 and "webhook URL refused" in refused.text, url
    assert channels_of(site, "inward@example.org") == [Endpoint(0, reader.id, "email")]
