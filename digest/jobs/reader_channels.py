"""A reader's channels as their own forms set them: the sign-up form (applied when the
link is used) and the preferences page. Operators use `digest channels` instead,
one channel at a time; both end in the same endpoint rows."""

from __future__ import annotations

import logging
from datetime import datetime

from digest.core.config import Config
from digest.core.errors import InvalidInput
from digest.core.models import ChannelChoice, Endpoint
from digest.delivery.channels.webhook import FORMATS, check_webhook_url
from digest.store import Store

log = logging.getLogger("digest.jobs")


def choose(
    config: Config, kinds: list[str], webhook_url: str, webhook_format: str
) -> ChannelChoice:
    """A form's ticks and webhook fields as a choice; InvalidInput says what to fix."""
    unknown = sorted(set(kinds) - {"email", "webhook", "feed"})
    if unknown:
        raise InvalidInput(f"{unknown[0][:40]!r} is not a channel: email, webhook or feed")
    if not kinds:
        raise InvalidInput("choose at least one place for the digest: email, webhook or feed")
    fmt = webhook_format or "json"
    if fmt not in FORMATS:
        raise InvalidInput("'webhook_format' is json or slack")
    url = ""
    if "webhook" in kinds:
        if not webhook_url.strip():
            raise InvalidInput("a webhook needs its URL")
        url = check_webhook_url(webhook_url, config)
    return ChannelChoice("email" in kinds, "feed" in kinds, url, fmt)


def current_choice(endpoints: list[Endpoint]) -> ChannelChoice:
    """What a form should show ticked: the reader's live channels."""
    live = [e for e in endpoints if e.disabled is None]
    hook = next((e for e in endpoints if e.kind == "webhook"), None)
    return ChannelChoice(
        any(e.kind == "email" for e in live),
        any(e.kind == "feed" for e in live),
        hook.target if hook and hook.disabled is None else "",
        hook.format if hook else "json",
    )


def apply_choice(store: Store, subscriber_id: int, choice: ChannelChoice, now: datetime) -> None:
    """Make the reader's channels what `choice` says. New channels are added before old
    ones go, so a reader always has one; a channel kept as it was keeps its secret (a
    receiver's key, a feed's link), and a disabled one chosen again starts afresh."""
    repo = store.endpoints
    have = repo.of([subscriber_id])[subscriber_id]
    keep: list[Endpoint] = []
    wanted = [("email", "", "", choice.email), ("feed", "", "", choice.feed)]
    wanted.append(("webhook", choice.webhook_url, choice.webhook_format, bool(choice.webhook_url)))
    for kind, target, fmt, on in wanted:
        if not on:
            continue
        same = [e for e in have if e.kind == kind and e.disabled is None]
        same = [e for e in same if kind != "webhook" or (e.target, e.format) == (target, fmt)]
        if same:
            keep.append(same[0])
            continue
        for stale in (e for e in have if e.kind == kind and e.target == target and e.id):
            repo.remove(subscriber_id, stale)  # a disabled twin: replaced, not duplicated
        keep.append(repo.add(subscriber_id, kind, now, target=target, format=fmt))
        log.info("subscriber %d added a %s channel", subscriber_id, kind)
    kept = {(e.id, e.kind) for e in keep}
    for endpoint in repo.of([subscriber_id])[subscriber_id]:
        if (endpoint.id, endpoint.kind) not in kept and not _matches(endpoint, keep):
            repo.remove(subscriber_id, endpoint)
            log.info("subscriber %d removed channel %s", subscriber_id, endpoint.key)


def _matches(endpoint: Endpoint, keep: list[Endpoint]) -> bool:
    """The implicit email (id 0) becomes a row once another channel is added: the row
    is the same channel the reader kept."""
    return endpoint.kind == "email" and any(k.kind == "email" and k.id == 0 for k in keep)
