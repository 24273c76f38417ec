"""The `webhook` channel: each edition as one signed JSON POST to a reader's URL, or, with
`format = "slack"`, as a Slack/Mattermost incoming-webhook message.

Signing follows the scheme receivers already know from Stripe and Slack: the header
`X-Digest-Signature: sha256=<hex>` is the HMAC-SHA256, keyed with the endpoint's
secret, of `<timestamp>.<body>`, and `X-Digest-Timestamp` is that Unix time. A
receiver recomputes it and refuses a timestamp more than five minutes old, so a
captured request cannot be replayed later. `X-Digest-Delivery` is the same on every
try of one copy: a POST that timed out after the receiver got it is sent again
with the same id, the one duplicate a receiver may see, and can drop.

A receiver that is busy or out of reach (a timeout, a refused connection, 408, 429,
5xx) is tried `[webhook] attempts` times with backoff, then left for the next send;
any other 4xx, or a redirect, is a permanent refusal: the endpoint is disabled and
the reason reported, while the reader's other channels go on.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from digest.core.config import Config
from digest.core.errors import BlockedURL, FetchError, InvalidInput
from digest.core.models import Edition, Endpoint, Subscriber
from digest.core.net import GuardedClient, check_public_host, check_scheme
from digest.delivery.channels import EndpointGone, Refused

FORMATS = ("json", "slack")
BUSY = frozenset({408, 425, 429, 500, 502, 503, 504})
SLACK_TEXT_LIMIT = 3000  # characters in one section block
SLACK_HEADER_LIMIT = 150


def check_webhook_url(url: str, config: Config) -> str:
    """The URL as a reader may register it: http(s), and a public host unless
    `[webhook] allow_private_addresses`; InvalidInput says why not."""
    url = url.strip()
    try:
        check_scheme(url)
        if not url.startswith(("http://", "https://")):
            raise BlockedURL(f"{url}: only http and https webhooks")
        if not config.webhook.allow_private_addresses:
            check_public_host(url)
    except FetchError as exc:
        raise InvalidInput(f"webhook URL refused: {exc}") from None
    return url


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


REPLAY_WINDOW = 300  # seconds a receiver should accept a signed timestamp for


def verify(
    secret: str, body: bytes, timestamp: str, signature: str, now: float | None = None
) -> bool:
    """What a receiver checks (in Python): the signature is ours over this body and this
    timestamp, and the timestamp is recent, so a captured request cannot be replayed."""
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > REPLAY_WINDOW:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def payload(edition: Edition, delivery_id: str) -> dict[str, Any]:
    """The edition as JSON: what the email says, as data."""
    return {
        "delivery_id": delivery_id,
        "date": edition.date,
        "subject": edition.email.subject,
        "insights": [
            {
                "text": item.insight.text,
                "show": item.show_title,
                "episode": item.episode_title,
                "episode_url": item.episode_url,
                "audio_url": item.audio_url,
                "start_seconds": item.insight.start_seconds,
                "chapter": item.insight.chapter,
                "quote": item.insight.quote,
            }
            for item in edition.items
        ],
    }


def _mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(edition: Edition) -> dict[str, Any]:
    """An incoming-webhook message: `text` (the notification), a header block and one
    section per insight naming its show and episode, linked to the moment."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": edition.email.subject[:SLACK_HEADER_LIMIT]},
        }
    ]
    for n, item in enumerate(edition.items, start=1):
        link = item.moment_url or item.episode_url
        source = _mrkdwn(f"{item.show_title}: {item.episode_title}")
        if link:
            source = f"<{link.replace('>', '%3E').replace('|', '%7C')}|{source}>"
        text = f"*{n}.* {_mrkdwn(item.insight.text)}\n_{source}_"
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:SLACK_TEXT_LIMIT]}}
        )
    return {"text": edition.email.subject, "blocks": blocks[:50]}


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        config: Config,
        client: GuardedClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = config.webhook
        self.client = client or GuardedClient(
            allow_private=self.settings.allow_private_addresses,
            timeout=self.settings.timeout_seconds,
            max_redirects=0,
        )
        self.sleep = sleep
        self.count = 0

    @property
    def written(self) -> list[Path]:
        return []

    def new_delivery_id(self) -> str:
        return secrets.token_hex(16)

    def deliver(
        self, edition: Edition, reader: Subscriber, delivery_id: str, endpoint: Endpoint
    ) -> None:
        if endpoint.format == "slack":
            data = slack_payload(edition)
        else:
            data = payload(edition, delivery_id)
        body = json.dumps(data, ensure_ascii=False).encode()
        url = endpoint.target
        wait = self.settings.backoff_seconds
        for attempt in range(1, max(self.settings.attempts, 1) + 1):
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "X-Digest-Delivery": delivery_id,
                "X-Digest-Timestamp": str(stamp),
                "X-Digest-Signature": sign(endpoint.secret, stamp, body),
            }
            try:
                status, answer = self.client.post(url, body, headers)
            except BlockedURL as exc:
                raise EndpointGone(f"{url}: {exc}") from None
            except FetchError as exc:
                problem = str(exc)
            else:
                if status < 300:
                    return
                if status not in BUSY:
                    why = f"{url} answered HTTP {status}" + (f": {answer[:200]}" if answer else "")
                    raise EndpointGone(why)
                problem = f"{url} answered HTTP {status} (busy)"
            if attempt < self.settings.attempts:
                self.sleep(wait)
                wait *= 2
        raise Refused(f"{problem}; tried {self.settings.attempts} times, next send tries again")

    def close(self) -> None:
        self.client.close()
