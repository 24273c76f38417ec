"""`digest web` over real HTTP, the CLI's send path, and the email's layout in Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.core.clock import utcnow
from digest.edition.render import render_email
from digest.jobs.edition import edition_items
from digest.jobs.send import send_digests
from digest.store import Store
from tests.support.browser import chromium
from tests.support.requirements import need
from tests.support.seed import seed_insights
from tests.support.waiting import wait_for
from tests.support.web import serve_web

DATABASES = ("sqlite",)  # pages and mail layout, not the database: one backend is enough

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def site(store: Store, make_config: Any) -> Iterator[tuple[Store, Any, str]]:
    config = make_config()
    seed_insights(store, config)
    store.subscribers.add("alice@example.org", utcnow())
    store.subscribers.add("bob@example.org", utcnow())
    send_digests(store, config, now=NOW)
    with serve_web(store, config) as base:
        yield store, config, base


def test_one_click_unsubscribe_needs_a_post_and_touches_only_its_owner(site: Any) -> None:
    store, _, base = site
    alice = store.subscribers.get("alice@example.org")
    page = httpx.get(f"{base}/unsubscribe/{alice.unsubscribe_token}")
    assert page.status_code == 200 and "Unsubscribe?" in page.text and 'method="post"' in page.text
    assert store.subscribers.get("alice@example.org").status == "active", (
        "a GET (link scanner) changes nothing"
    )
    done = httpx.post(
        f"{base}/unsubscribe/{alice.unsubscribe_token}", content=b"List-Unsubscribe=One-Click"
    )
    assert done.status_code == 200 and "will get no more digests" in done.text
    assert store.subscribers.get("alice@example.org").status == "unsubscribed"
    assert store.subscribers.get("bob@example.org").status == "active"
    assert httpx.post(f"{base}/unsubscribe/{'x' * 32}").status_code == 404
    assert (
        httpx.get(f"{base}/subscription/{alice.unsubscribe_token}").text.count("not subscribed")
        == 1
    )


def test_archive_shows_past_digests_without_personal_data(site: Any) -> None:
    store, _, base = site
    index = httpx.get(f"{base}/archive")
    assert index.status_code == 200 and "/archive/2026-11-23" in index.text
    day = httpx.get(f"{base}/archive/2026-11-23")
    assert day.status_code == 200 and day.text.count('data-insight="') == 5
    for subscriber in store.subscribers.list():
        assert subscriber.email not in day.text and subscriber.unsubscribe_token not in day.text
    assert httpx.get(f"{base}/archive/2020-01-01").status_code == 404
    for probe in (
        "/subscribers",
        "/unsubscribe/../../etc/passwd",
        "//evil.example/",
        "/archive?next=https://evil.example",
    ):
        response = httpx.get(base + probe, follow_redirects=False)
        assert response.status_code in (200, 404) and "location" not in response.headers
        assert "alice@example.org" not in response.text
    assert "default-src 'none'" in day.headers["content-security-policy"]


def test_cli_send_run_and_unsubscribe_by_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "digest.toml"
    config.write_text('[storage]\nstate_dir = "state"\n')
    runner = CliRunner()

    def digest(*args: str) -> str:
        result = runner.invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
        from digest.core.config import load_config

        seed_insights(store, load_config(str(config)))
    digest("subscribers", "add", "alice@example.org", "--send-time", "00:00")
    dry = digest("send", "--dry-run")
    assert "1 built (dry run)" in dry and not (tmp_path / "state" / "outbox").exists()
    out = digest("send")
    assert "Sent 1 message(s)" in out and "alice@example.org.eml" in out
    assert "Sent 0 message(s)" in digest("send")
    [alice] = json.loads(digest("subscribers", "list", "--json"))
    token = (
        Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}")
        .subscribers.get("alice@example.org")
        .unsubscribe_token
    )
    assert "Unsubscribed alice@example.org" in digest("subscribers", "unsubscribe", token)
    assert json.loads(digest("subscribers", "list", "--json"))[0]["status"] == "unsubscribed"
    assert alice["status"] == "active"


# Headless Chromium will not make a window narrower than 500 px, so the email is
# measured inside a 375 px iframe: a real 375 px viewport, where @media rules apply.
PROBE = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="email" src="email.html" style="width:375px;height:4000px;border:0"></iframe>
<script>
document.getElementById('email').addEventListener('load', (event) => {
  const doc = event.target.contentDocument, win = event.target.contentWindow;
  const cards = [...doc.querySelectorAll('[data-insight]')];
  const visible = cards.filter(c => c.getBoundingClientRect().height > 0 && c.getBoundingClientRect().width > 0);
  document.title = JSON.stringify({scrollWidth: doc.documentElement.scrollWidth,
    viewport: win.innerWidth, cards: cards.length, visible: visible.length,
    widest: Math.max(...[...doc.querySelectorAll('*')].map(e => e.getBoundingClientRect().right))});
});
</script></body></html>"""


def test_the_email_fits_a_phone_screen_in_chromium(
    store: Store, make_config: Any, tmp_path: Path
) -> None:
    need("chromium")
    config = make_config()
    seed_insights(store, config, show="A show with an extraordinarily long name that goes on " * 3)
    items = edition_items(store, config, "2026-11-23", NOW)
    _, html = render_email("2026-11-23", items, "https://digest.example/archive").personalise(
        "https://digest.example/unsubscribe/" + "t" * 32,
        "https://digest.example/subscription/" + "t" * 32,
    )
    email = tmp_path / "email.html"
    email.write_text(html)  # the real email, for a person to open
    probe = tmp_path / "probe.html"
    probe.write_text(PROBE)  # a page that frames the email and measures it
    dom = chromium(tmp_path / "profile", "--dump-dom", probe.as_uri())
    title = dom.split("<title>", 1)[1].split("</title>", 1)[0].replace("&quot;", '"')
    layout = json.loads(title)
    assert layout["cards"] == 5 and layout["visible"] == 5
    assert layout["scrollWidth"] <= layout["viewport"] == 375, "no horizontal scrolling on a phone"
    assert layout["widest"] <= 375.5
    shot = tmp_path / "email-375.png"
    chromium(tmp_path / "profile", f"--screenshot={shot}", probe.as_uri())
    assert shot.stat().st_size > 10_000


def test_the_digest_web_command_serves_with_uvicorn(make_config: Any, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    config = tmp_path / "digest.toml"
    config.write_text(f'[storage]\nstate_dir = "{tmp_path / "state"}"\n')
    server = subprocess.Popen(  # port 0: the command binds a free port and says which
        [sys.executable, "-m", "digest.cli", "--config", str(config), "web", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert server.stdout is not None
    try:
        first = server.stdout.readline()  # printed once the socket is bound
        found = re.match(r"Serving on http://127\.0\.0\.1:(\d+) ", first)
        assert found, first
        port = int(found.group(1))
        page = wait_for(lambda: answer(f"http://127.0.0.1:{port}/subscribe"), 60, "the site")
        assert page.status_code == 200 and 'name="email"' in page.text
        assert "server" not in page.headers, "no server banner"
    finally:
        server.terminate()
        server.wait(30)
        # Read through the same text stream readline used: it may hold the next lines
        # already (communicate() would read the pipe underneath and miss them).
        output = first + server.stdout.read()
    assert "Pages and emails link to http://localhost:8025 ([web] base_url)" in output, output
    assert "/subscribe" not in output, "no access log: paths carry subscribers' tokens"


def answer(url: str) -> httpx.Response | None:
    """The page, or None while the server is not accepting yet."""
    try:
        return httpx.get(url)
    except httpx.ConnectError:
        return None
