"""Exceptions that reach users: each message names the item and says what to do.

The CLI prints `str(error)` as one line and exits non-zero, so every message here
must make sense on its own, without a traceback.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base for every error the pipeline expects and reports to a person.

    Two flags steer what happens next, in the CLI and in the flows alike:
    `retryable` -- a fault on the way to this item (a refused connection, a timeout,
    a 5xx or 429) that trying again in a few seconds may cure; Prefect task retries
    fire for these and only these. `transient` -- the item is fine and a service or
    the machine is not (an LLM endpoint down, a full disk): the item waits for the
    next run without using up an attempt.
    """

    transient = False

    def __init__(self, *args: object, retryable: bool = False) -> None:
        super().__init__(*args)
        self.retryable = retryable


class ConfigError(DigestError):
    """The configuration file or an environment override is wrong."""


class StoreError(DigestError):
    """The state database cannot be opened, migrated or written."""


class InvalidInput(DigestError):
    """A value typed by a user (an address, a URL, a timezone) is not acceptable."""


class NotFound(DigestError):
    """A feed, episode or subscriber named by the user does not exist."""


class FetchError(DigestError):
    """An HTTP or file fetch failed: network, status code, size or time limit."""


class BlockedURL(FetchError):
    """A URL was refused before any request: bad scheme or a private address."""


class TooLarge(FetchError):
    """A body passed its size limit; trying again cannot help."""


class FeedParseError(DigestError):
    """What was fetched is not a usable RSS or Atom feed."""


class TranscriptError(DigestError):
    """A transcript could not be obtained: unusable publisher file, engine failure, timeout."""


class MediaError(DigestError):
    """An enclosure is not usable audio: HTML, random bytes, empty, too long."""


class Busy(DigestError):
    """Another run holds the state directory's lock."""


class DiskFull(DigestError):
    """The state directory's disk (or quota) is full; the next run retries."""

    transient = True


class ServiceUnavailable(DigestError):
    """A service the pipeline needs (the LLM endpoint) cannot be reached right now."""

    transient = True
