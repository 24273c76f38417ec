"""Delivery channels: one module each, registered in `digest.core.registry.CHANNELS`
under the name a reader's channel has ("email", ...).

A channel is a class built from the config for one send (`Channel(config)`), which
hands each reader their copy of an edition (`deliver`) and is closed after the
batch. How a delivery fails is the channel's whole interface to the rest of the
pipeline, the same for every channel, and used the same way by the send job, the
flows' retry policy and the CLI:

- `ChannelSetupError`: only a setting can cure it (a refused login, a certificate that
  does not verify): the batch stops, nothing retries it, the messages wait unsent;
- `ChannelUnavailable`: the other end is busy or out of reach: the batch stops and is
  tried again later (in deployed runs, by the send task's retries);
- `Refused`: this one reader's copy was refused, for good (`permanent`: the reader is
  marked bounced) or for now (tried again on the next run); the batch goes on;
- `EndpointGone`: this reader's endpoint refused for good (a webhook answering 410):
  that endpoint is disabled with the reason, the reader and their other channels
  go on.

`deliver` gets the reader's `Endpoint` too: where the copy goes, for channels that
have more than one place per reader (a webhook's URL, its format and secret).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from digest.core.config import Config
from digest.core.errors import DigestError
from digest.core.models import Edition, Endpoint, Subscriber
from digest.core.registry import CHANNELS


class DeliveryError(DigestError):
    """A reader's copy was not delivered."""

    permanent = False


class ChannelUnavailable(DeliveryError):
    """The channel's other end cannot be reached now: stop the batch, retry later."""


class ChannelSetupError(ChannelUnavailable):
    """Only fixing a setting helps: stop the batch and do not retry; the copies stay
    undelivered until the setting is fixed."""


class Refused(DeliveryError):
    """This reader's copy was refused; `permanent` (for good) or not (for now)."""


class PermanentlyRefused(Refused):
    permanent = True


class EndpointGone(PermanentlyRefused):
    """The endpoint, not the reader, is gone: disable it, keep the reader."""


class Channel(Protocol):
    name: str

    @property
    def written(self) -> list[Path]:
        """Files the channel wrote instead of sending (the email outbox)."""
        ...

    def new_delivery_id(self) -> str:
        """An id for a new copy, kept in the ledger and given again on every retry."""
        ...

    def deliver(
        self, edition: Edition, reader: Subscriber, delivery_id: str, endpoint: Endpoint
    ) -> None:
        """Hand over `reader`'s copy of `edition` at `endpoint`; `delivery_id` is the same
        for every try of this copy, so the other end can drop a repeat. Raises a
        DeliveryError."""
        ...

    def close(self) -> None: ...


def open_channel(name: str, config: Config) -> Channel:
    channel: Channel = CHANNELS.get(name)(config)
    return channel
