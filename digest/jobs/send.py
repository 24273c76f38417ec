"""Sending: each subscriber gets their local date's digest once, at their local hour.

Readers who follow the same shows read one edition per date: it is frozen the first
time anyone needs it (its insights are then never selected for that selection again)
and rendered once for all of them. The all-shows edition is frozen every day anything
is sent: it is the public archive's. The ledger row for (subscriber, date) is written before the
hand-over ("sending", with the Message-ID) and after it ("sent"), so a crash or a
dropped connection half-way through a batch is followed by a run that sends only
what is missing; a message whose acceptance was never recorded is sent again with
the same Message-ID, which receiving servers use to drop duplicates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from digest.core.clock import utcnow
from digest.core.config import Config, check_mail_links
from digest.core.errors import DigestError
from digest.core.models import Edition, Endpoint, Subscriber
from digest.delivery.channels import (
    Channel,
    ChannelSetupError,
    ChannelUnavailable,
    DeliveryError,
    EndpointGone,
    open_channel,
)
from digest.jobs import progress
from digest.jobs.edition import edition, edition_items
from digest.jobs.leases import Claimed, Leases
from digest.store import Delivery, Store

log = logging.getLogger("digest.send")
Outcome = Literal["sent", "failed", "rejected", "dry-run", "nothing-to-send", "not-attempted"]


@dataclass(frozen=True)
class SendResult:
    email: str
    date: str
    outcome: Outcome
    error: str | None = None
    channel: str = "email"  # the ledger's name of the endpoint: "email", "webhook:12"


@dataclass
class SendReport:
    results: list[SendResult] = field(default_factory=list)
    outbox: list[Path] = field(default_factory=list)  # .eml files written, when no SMTP host
    stopped: str | None = None  # why a batch stopped early (the server, not an address)
    # The stop needs a setting fixed (a refused login, an unverified certificate, ...):
    # retrying cannot help, so nothing retries it; the messages wait, unsent.
    needs_setting: bool = False
    # Another run holds the send (two schedulers, a worker and a cron job): it sends to
    # everyone due, so this one sent nothing.
    elsewhere: str | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(r.outcome == outcome for r in self.results)

    @property
    def reason(self) -> str:
        """Why messages were left undelivered: the stop, else the first failure."""
        failed = (r.error for r in self.results if r.outcome == "failed" and r.error)
        return self.stopped or next(failed, "unknown")

    @property
    def to_retry(self) -> int:
        """Messages not delivered for a reason the next attempt may not have."""
        return self.count("failed") + self.count("not-attempted")


class DeliveryIncomplete(DigestError):
    """Some of the due messages were not delivered; `report` says which and why."""

    def __init__(self, report: SendReport) -> None:
        reason = report.reason
        if report.needs_setting:
            message = str(reason)
        else:
            message = f"{report.to_retry} message(s) not delivered yet ({reason})"
        super().__init__(message, retryable=not report.needs_setting)
        self.report = report

    def __reduce__(self) -> tuple[type[DeliveryIncomplete], tuple[SendReport]]:
        return (type(self), (self.report,))


def due_date(subscriber: Subscriber, config: Config, now: datetime) -> str | None:
    """The subscriber's local date if their send time has come today (for a weekly
    reader: today is their weekday), else None."""
    local = now.astimezone(ZoneInfo(subscriber.timezone or config.digest.timezone))
    if subscriber.weekly and local.weekday() != subscriber.weekday:
        return None
    hour, minute = (int(p) for p in (subscriber.send_time or config.digest.send_time).split(":"))
    return local.date().isoformat() if local.time() >= time(hour, minute) else None


def send_digests(
    store: Store,
    config: Config,
    *,
    now: datetime | None = None,
    date: str | None = None,
    dry_run: bool = False,
    channel: Channel | None = None,
) -> SendReport:
    """Deliver every due, undelivered (subscriber, date) copy; `date` sends that date to all.

    One run sends at a time, wherever it runs: the send is claimed in the state
    database (`digest.jobs.leases`), so two daily-digest runs started together, on one
    worker or two, cannot both read the ledger as unsent and send twice."""
    if dry_run:
        return _send_due(store, config, now, date, dry_run, channel)
    check_mail_links(config)  # links that reach no one are not sent at all
    try:
        with Leases(store, config.orchestration.lease_seconds).hold("send"):
            return _send_due(store, config, now, date, dry_run, channel)
    except Claimed as exc:
        log.info("not sending: %s", exc)
        return SendReport(elsewhere=str(exc))


def _send_due(
    store: Store,
    config: Config,
    now: datetime | None,
    date: str | None,
    dry_run: bool,
    channel: Channel | None,
) -> SendReport:
    now = now or utcnow()
    due: dict[str, list[Subscriber]] = {}
    for subscriber in store.subscribers.list(status="active"):
        day = date or due_date(subscriber, config, now)
        if day is not None:
            due.setdefault(day, []).append(subscriber)
    endpoints = store.endpoints.of(s.id for readers in due.values() for s in readers)
    plan: dict[str, list[Copy]] = {}
    ledger: dict[str, Ledger] = {}  # one query per date, not per subscriber
    for day, readers in due.items():
        ledger[day] = {(d.subscriber_id, d.channel): d for d in store.digests.deliveries(day)}
        for subscriber in readers:
            for endpoint in endpoints[subscriber.id]:
                done = ledger[day].get((subscriber.id, endpoint.key))
                if endpoint.disabled is None and not (done and done.status in FINAL):
                    plan.setdefault(day, []).append(Copy(subscriber, endpoint))
    report = SendReport()
    progress.begin("messages", sum(len(copies) for copies in plan.values()))
    channels = OpenChannels(config, channel)
    try:
        for day, copies in sorted(plan.items()):
            batch = Batch(day, copies, ledger[day])
            _send_day(store, config, batch, channels, now, dry_run, report)
    finally:
        channels.close()
    report.outbox.extend(channels.written)
    return report


FINAL = ("sent", "rejected")
Ledger = dict[tuple[int, str], Delivery]  # (subscriber id, channel) -> its row


@dataclass(frozen=True)
class Copy:
    """One reader's copy of their edition, at one of their endpoints."""

    reader: Subscriber
    endpoint: Endpoint


@dataclass(frozen=True)
class Batch:
    """One date's copies, with what the ledger already says about each."""

    day: str
    copies: list[Copy]
    ledger: Ledger


class OpenChannels:
    """The channels of one send, each opened when its first copy comes; a channel that
    is out of reach is stopped for the rest of the send, the others go on."""

    def __init__(self, config: Config, given: Channel | None) -> None:
        self.config = config
        self.open: dict[str, Channel] = {given.name: given} if given is not None else {}
        self.stopped: dict[str, str] = {}  # kind -> why

    def get(self, kind: str) -> Channel:
        if kind not in self.open:
            self.open[kind] = open_channel(kind, self.config)
        return self.open[kind]

    @property
    def written(self) -> list[Path]:
        return [path for channel in self.open.values() for path in channel.written]

    def close(self) -> None:
        for channel in self.open.values():
            channel.close()


def _send_day(
    store: Store,
    config: Config,
    batch: Batch,
    channels: OpenChannels,
    now: datetime,
    dry_run: bool,
    report: SendReport,
) -> None:
    day = batch.day
    if not dry_run:  # the public archive's edition, whoever reads it
        edition_items(store, config, day, now, freeze=True)
    groups: dict[str, list[Copy]] = {}
    for copy in batch.copies:
        groups.setdefault(copy.reader.selection, []).append(copy)
    for selection, copies in sorted(groups.items()):
        reader = copies[0].reader  # one selection key: the same topics and cadence
        items = edition_items(
            store,
            config,
            day,
            now,
            selection,
            freeze=not dry_run,
            topics=reader.topic_filter,
            weekly=reader.weekly,
        )
        if not items:  # nothing new in these shows: no email today
            report.results += [
                SendResult(c.reader.email, day, "nothing-to-send", channel=c.endpoint.key)
                for c in copies
            ]
            continue
        frozen = store.digests.get(day, selection)
        header = frozen.header if frozen else ""
        issue = edition(config, day, selection, items, weekly=reader.weekly, header=header)
        for copy in copies:
            _send_copy(store, batch, copy, issue, channels, dry_run, report)


def _send_copy(
    store: Store,
    batch: Batch,
    copy: Copy,
    issue: Edition,
    channels: OpenChannels,
    dry_run: bool,
    report: SendReport,
) -> None:
    day, reader, endpoint = batch.day, copy.reader, copy.endpoint
    key = endpoint.key

    def result(outcome: Outcome, error: str | None = None) -> None:
        report.results.append(SendResult(reader.email, day, outcome, error, key))

    if dry_run:
        return result("dry-run")
    if endpoint.kind in channels.stopped:  # out of reach: it waits for the next send
        return result("not-attempted", f"the batch stopped: {channels.stopped[endpoint.kind]}")
    channel = channels.get(endpoint.kind)
    earlier = batch.ledger.get((reader.id, key))
    delivery_id = earlier.message_id if earlier else channel.new_delivery_id()
    store.digests.mark(
        reader.id, day, "sending", delivery_id, utcnow(), channel=key, edition=issue.selection
    )
    try:
        channel.deliver(issue, reader, delivery_id, endpoint)
    except ChannelUnavailable as exc:
        store.digests.mark(
            reader.id, day, "failed", delivery_id, utcnow(), str(exc), key, issue.selection
        )
        result("failed", str(exc))
        channels.stopped[endpoint.kind] = str(exc)
        report.stopped = report.stopped or str(exc)
        report.needs_setting = report.needs_setting or isinstance(exc, ChannelSetupError)
        log.error("stopped sending by %s: %s", endpoint.kind, exc)
        return None
    except DeliveryError as exc:
        outcome: Outcome = "rejected" if exc.permanent else "failed"
        store.digests.mark(
            reader.id, day, outcome, delivery_id, utcnow(), str(exc), key, issue.selection
        )
        if isinstance(exc, EndpointGone) and endpoint.id:
            store.endpoints.disable(endpoint.id, str(exc), utcnow())
        elif exc.permanent:
            store.subscribers.set_status(reader.id, "bounced")
        return result(outcome, str(exc))
    store.digests.mark(
        reader.id, day, "sent", delivery_id, utcnow(), channel=key, edition=issue.selection
    )
    result("sent")
    progress.advance("messages")
    return None
