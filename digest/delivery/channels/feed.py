"""The `feed` channel: a reader's own feed at `/feed/<token>.xml`, so a feed reader (or
a podcast app) needs no email at all. Delivering a copy publishes it: the ledger row
(reader, date, channel, edition) is what the feed lists, so there is nothing to send
and nothing that can fail on the way."""

from __future__ import annotations

import secrets
from pathlib import Path

from digest.core.config import Config
from digest.core.models import Edition, Endpoint, Subscriber


def feed_url(base_url: str, endpoint: Endpoint) -> str:
    return f"{base_url.rstrip('/')}/feed/{endpoint.secret}.xml"


class FeedChannel:
    name = "feed"

    def __init__(self, config: Config) -> None:
        self.config = config

    @property
    def written(self) -> list[Path]:
        return []

    def new_delivery_id(self) -> str:
        return secrets.token_hex(16)

    def deliver(
        self, edition: Edition, reader: Subscriber, delivery_id: str, endpoint: Endpoint
    ) -> None:
        """Published by the ledger's row: the feed reads the frozen edition from there."""

    def close(self) -> None:
        pass
