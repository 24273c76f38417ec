"""The `feed` channel: a reader's own feed at `/feed/<token>.xml`, so a feed reader (or
a podcast app) needs no email at all. Delivering a copy publishes it: the ledger row
(reader, date, channel, edition) is what the feed lists. With the `voice` extra the
edition is also read aloud, once for all its readers (`digest.delivery.voice`), and
the feed becomes a podcast; audio that cannot be made leaves the copy for the next
send, with the reason."""

from __future__ import annotations

import secrets
from pathlib import Path

from digest.core.config import Config
from digest.core.errors import DigestError
from digest.core.models import Edition, Endpoint, Subscriber
from digest.delivery import voice
from digest.delivery.channels import Refused


def voice_folder(config: Config) -> Path:
    return config.state_dir / "voice"


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
        if not (self.config.voice.enabled and voice.available()):
            return
        try:
            voice.speak(edition, voice_folder(self.config), self.config.voice.bitrate)
        except (DigestError, OSError) as exc:
            raise Refused(f"the edition could not be read aloud: {exc}") from exc

    def close(self) -> None:
        pass
