"""The security review's claims (docs/security.md), each checked against the real thing."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement

from digest import jobs
from digest.core.config import config_from_dict
from digest.jobs.extraction import Extractor
from digest.jobs.send import send_digests
from digest.store import Store, redact
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.seed import seed_insights, seed_transcripts
from tests.support.web import raw_request, serve_web

ROOT = Path(__file__).parent.parent.parent
CANARY_KEY = "sk-canary-0123456789abcdef"
CANARY_PASSWORD = "smtp-canary-hunter2"


def test_secrets_never_reach_logs_even_at_debug_level(
    make_config: Any, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    env = {"OPENAI_API_KEY": CANARY_KEY, "DIGEST_SMTP_PASSWORD": CANARY_PASSWORD}
    tested = make_config(extraction={"backend": "openai", "base_url": fake_openai.base_url})
    data = {"storage": {"state_dir": str(tested.state_dir)}, "extraction": {
        "backend": "openai", "base_url": fake_openai.base_url}}  # fmt: skip
    config = config_from_dict(data, env=env, base_dir=tested.base_dir)
    assert config.secrets.openai_api_key == CANARY_KEY
    store = Store(config.database_url)
    [episode_id] = seed_transcripts(store, scripts=("kimi-k2",))
    fake_openai.queue.append(Reply(500, {"error": {"message": "boom"}}))  # errors get logged
    with caplog.at_level(logging.DEBUG):
        result = Extractor(store, config).extract(store.episodes.get(episode_id))
    assert result.outcome == "extracted"
    [first, *_] = fake_openai.calls_to("/v1/chat/completions")
    assert first.headers["authorization"] == f"Bearer {CANARY_KEY}", "the key was really used"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "chat/completions" in logged, "debug logging was really on"
    assert CANARY_KEY not in logged and CANARY_PASSWORD not in logged
    assert CANARY_KEY not in repr(config) and CANARY_PASSWORD not in repr(config)


def test_database_passwords_are_redacted_from_messages() -> None:
    assert redact("postgresql://digest:s3cr3t@db:5432/digest") == (
        "postgresql://digest:***@db:5432/digest"
    )
    assert redact("sqlite:////var/lib/digest/digest.db") == "sqlite:////var/lib/digest/digest.db"


@pytest.fixture
def site(make_config: Any) -> Iterator[tuple[Store, str]]:
    config = make_config()
    store = Store(config.database_url)
    seed_insights(store, config)
    for address in ("alice@example.org", "bob@example.org"):
        store.subscribers.add(address, jobs.utcnow())
    send_digests(store, config)
    with serve_web(store, config) as base:
        yield store, base


def test_unsubscribe_tokens_are_unguessable_and_only_work_for_their_owner(site: Any) -> None:
    store, base = site
    alice, bob = (store.subscribers.get(a) for a in ("alice@example.org", "bob@example.org"))
    for token in (alice.unsubscribe_token, bob.unsubscribe_token):
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token), "192 random bits, URL-safe"
    assert alice.unsubscribe_token != bob.unsubscribe_token
    forged = alice.unsubscribe_token[:-1] + ("A" if alice.unsubscribe_token[-1] != "A" else "B")
    response = httpx.post(f"{base}/unsubscribe/{forged}")
    assert response.status_code == 404 and "alice" not in response.text
    assert httpx.post(f"{base}/unsubscribe/{alice.unsubscribe_token}").status_code == 200
    assert store.subscribers.get("alice@example.org").status == "unsubscribed"
    assert store.subscribers.get("bob@example.org").status == "active"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/subscribers",
        "/subscription/",
        "/state/digest.db",
        # Sent as written (raw bytes: a client library would resolve the dots away first).
        "/archive/../../etc/passwd",
        "/archive/../state/digest.db",
        "/archive/%2e%2e/%2e%2e/etc/passwd",
        "/archive/..%2f..%2fetc%2fpasswd",
        "/archive/%2E%2E%2F%2E%2E%2Fstate%2Fdigest.db",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/confirm/..%2F..%2Fstate%2Fdigest.db",
        "/archive/..\\..\\etc\\passwd",
        "/archive/2026-12-01/../../../etc/passwd",
    ],
)
def test_the_web_endpoint_lists_no_one_and_serves_no_files(site: Any, path: str) -> None:
    _store, base = site
    target = path.encode()
    answer = raw_request(base, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.status in (200, 404), answer
    text = answer.body.decode("utf-8", "replace")
    for address in ("alice@example.org", "bob@example.org"):
        assert address not in text
    assert "SQLite" not in text and "root:" not in text
    if ".." in path or "%2" in path.lower():
        assert answer.status == 404, "a path with dots names no file"


@pytest.mark.parametrize(
    "query",
    ["?next=https://evil.example/", "?redirect=//evil.example", "?url=https://evil.example"],
)
def test_no_open_redirect(site: Any, query: str) -> None:
    store, base = site
    token = store.subscribers.get("bob@example.org").unsubscribe_token
    for method in (httpx.get, httpx.post):
        response = method(f"{base}/unsubscribe/{token}{query}", follow_redirects=False)
        assert not 300 <= response.status_code < 400, "no redirects at all"
        assert "evil.example" not in response.headers.get("location", "")


def test_every_dependency_is_pinned() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned to one version"
            pins[name.lower().replace("_", "-")] = version
    wanted = [Requirement(r) for r in metadata.requires("podcast-digest") or []]
    for requirement in wanted:
        if requirement.marker is None:  # the core dependencies, every install
            name = requirement.name.lower().replace("_", "-")
            assert name in pins, f"{name} is not pinned in constraints.txt"
            assert metadata.version(requirement.name) == pins[name], f"{name} drifted"
