"""The subscriber's story in a real browser (Debian's chromium driven by Selenium):
sign up choosing one of two shows, confirm from the email, get only that show, change
the choice on the preferences page, and get the other show the next day."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

from digest.jobs import send_digests
from digest.store import Store
from tests.conftest import PUBLIC_BASE_URL
from tests.support.browser import webdriver_session
from tests.support.ports import bound_socket
from tests.support.requirements import need
from tests.support.seed import SCRIPTS, seed_insights
from tests.support.smtpserver import Mailbox, SmtpServer
from tests.support.web import serve_web

pytestmark = pytest.mark.slow
READER = "story.reader@example.org"
DAY1 = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def wait_for_mail(mailbox: Mailbox, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + 20
    while len(mailbox.to(READER)) < count:
        assert time.monotonic() < deadline, f"no email #{count} for {READER}"
        time.sleep(0.1)
    return mailbox.to(READER)


def press(browser: Any, css: str) -> str:
    """Click a form's button and wait for the page it leads to; that page's heading."""
    button = browser.find_element("css selector", css)
    button.click()
    WebDriverWait(browser, 30).until(lambda _: detached(button))
    return str(browser.find_element("tag name", "h1").text)


def detached(element: Any) -> bool:
    """The old page's element is gone. Selenium's `staleness_of` expects a
    StaleElementReferenceException; chromium, asked while it swaps the document,
    may instead answer "Node with given id does not belong to the document" (seen in
    CI on a loaded machine), which says the same."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def plain(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def shows_in(message: EmailMessage) -> set[str]:
    return {s for s in ("Alpha Hour", "Beta Talk") if f"-- {s}" in plain(message)}


def test_sign_up_confirm_receive_and_change_shows_in_a_browser(
    make_config: Any, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    need("chromium", "chromium-driver")
    sock = bound_socket()
    base = PUBLIC_BASE_URL  # what the mail says; the browser resolves it to the site
    site = {"digest.example.org": f"127.0.0.1:{sock.getsockname()[1]}"}
    config = make_config(smtp={"host": "127.0.0.1", "port": smtp_server.port, "security": "none"})
    mailbox = smtp_server.mailbox
    with Store(config.database_url) as store, serve_web(store, config, sock):
        seed_insights(store, config, show="Alpha Hour", scripts=SCRIPTS[:2])
        seed_insights(store, config, show="Beta Talk", scripts=SCRIPTS[2:])
        feeds = {f.title: f for f in store.feeds.list()}
        with webdriver_session(tmp_path / "profile", hosts=site) as browser:
            browser.get(f"{base}/subscribe")
            browser.find_element("name", "email").send_keys(READER)
            browser.find_element(
                "css selector", f'input[name="show"][value="{feeds["Alpha Hour"].url}"]'
            ).click()
            assert press(browser, 'form[action="/subscribe"] button') == "Check your inbox"

            [confirmation] = wait_for_mail(mailbox, 1)
            link = re.search(rf"{re.escape(base)}/confirm/\S+", plain(confirmation))
            assert link, plain(confirmation)
            browser.get(link.group(0))
            assert store.subscribers.get(READER).status == "pending", "opening is not confirming"
            assert press(browser, "form button") == "You are subscribed"
            assert store.subscribers.get(READER).status == "active"

            send_digests(store, config, now=DAY1)
            first = wait_for_mail(mailbox, 2)[-1]
            assert shows_in(first) == {"Alpha Hour"}, "only the chosen show"

            manage = re.search(rf"{re.escape(base)}/subscription/\S+", plain(first))
            assert manage, "the digest links to the reader's preferences"
            browser.get(manage.group(0))
            for title, tick in (("Alpha Hour", False), ("Beta Talk", True)):
                box = browser.find_element(
                    "css selector", f'input[name="show"][value="{feeds[title].url}"]'
                )
                if box.is_selected() != tick:
                    box.click()
            press(browser, 'button[value="save"]')
            assert "Saved" in browser.find_element("tag name", "body").text

            send_digests(store, config, now=DAY1 + timedelta(days=1))
            second = wait_for_mail(mailbox, 3)[-1]
            assert shows_in(second) == {"Beta Talk"}, "the next day follows the new choice"

            browser.get(manage.group(0))  # topics, typed as into a search box
            topics = browser.find_element("name", "topics")
            topics.clear()
            topics.send_keys('"Language Model" training -crypto')
            browser.find_element("name", "topics_only").click()
            browser.find_element("css selector", 'input[name="cadence"][value="weekly"]').click()
            browser.find_element("css selector", 'option[value="sunday"]').click()
            press(browser, 'button[value="save"]')
            assert "Saved" in browser.find_element("tag name", "body").text
            reader = store.subscribers.get(READER)
            assert (reader.topics, reader.topics_only) == (
                '"language model" training -crypto',
                True,
            )
            assert (reader.cadence, reader.weekday) == ("weekly", 6)
            assert browser.find_element("name", "topics_only").is_selected(), "shown as saved"
            browser.get(manage.group(0))
            assert "every Sunday at" in browser.find_element("tag name", "body").text

            # Channels: a private feed instead of email, its link shown and working.
            browser.find_element("css selector", 'input[name="channel"][value="feed"]').click()
            browser.find_element("css selector", 'input[name="channel"][value="email"]').click()
            press(browser, 'button[value="save"]')
            assert "Saved" in browser.find_element("tag name", "body").text
            link = browser.find_element("css selector", "ul.channels a").get_attribute("href")
            reader = store.subscribers.get(READER)
            [feed] = store.endpoints.of([reader.id])[reader.id]
            assert (feed.kind, link) == ("feed", f"{base}/feed/{feed.secret}.xml")
            assert not browser.find_element(
                "css selector", 'input[name="channel"][value="email"]'
            ).is_selected(), "email shown as gone"
            browser.get(link)
            source = browser.page_source
            assert "rss" in source.lower() and "Not found" not in source, source[:300]
