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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from digest.core.clock import utcnow
from digest.core.config import Config, check_mail_links
from digest.core.errors import DigestError
from digest.core.models import Edition, Subscriber
from digest.delivery.channels import (
    Channel,
    ChannelSetupError,
    ChannelUnavailable,
    DeliveryError,
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

    def not_attempted(self, day: str, subscribers: Sequence[Subscriber]) -> None:
        """The rest of a stopped send: each message waits, unsent, for the next attempt."""
        why = f"the batch stopped: {self.stopped}"
        self.results += [SendResult(s.email, day, "not-attempted", why) for s in subscribers]

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
    plan: dict[str, list[Subscriber]] = {}
    ledger: dict[str, dict[int, Delivery]] = {}  # one query per date, not per subscriber
    for subscriber in store.subscribers.list(status="active"):
        day = date or due_date(subscriber, config, now)
        if day is None:
            continue
        if day not in ledger:
            ledger[day] = {d.subscriber_id: d for d in store.digests.deliveries(day)}
        done = ledger[day].get(subscriber.id)
        if not (done and done.status in ("sent", "rejected")):
            plan.setdefault(day, []).append(subscriber)
    report = SendReport()
    progress.begin("messages", sum(len(readers) for readers in plan.values()))
    channel = channel or open_channel("email", config)
    try:
        for day, subscribers in sorted(plan.items()):
            if report.stopped:  # the channel is out of reach: the other dates wait too
                report.not_attempted(day, subscribers)
                continue
            batch = Batch(day, subscribers, ledger[day])
            _send_day(store, config, batch, channel, now, dry_run, report)
    finally:
        channel.close()
    report.outbox.extend(channel.written)
    return report


@dataclass(frozen=True)
class Batch:
    """One date's recipients, with what the ledger already says about each."""

    day: str
    subscribers: list[Subscriber]
    ledger: dict[int, Delivery]


def _send_day(
    store: Store,
    config: Config,
    batch: Batch,
    channel: Channel,
    now: datetime,
    dry_run: bool,
    report: SendReport,
) -> None:
    day = batch.day
    if not dry_run:  # the public archive's edition, whoever reads it
        edition_items(store, config, day, now, freeze=True)
    groups: dict[str, list[Subscriber]] = {}
    for subscriber in batch.subscribers:
        groups.setdefault(subscriber.selection, []).append(subscriber)
    for n, (selection, subscribers) in enumerate(sorted(groups.items())):
        reader = subscribers[0]  # one selection key: the same topics and cadence
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
            report.results += [SendResult(s.email, day, "nothing-to-send") for s in subscribers]
            continue
        issue = edition(config, day, selection, items, weekly=reader.weekly)
        _send_edition(store, batch, subscribers, issue, channel, dry_run, report)
        if report.stopped:  # the channel is out of reach: the other editions wait too
            rest = [s for _, group in sorted(groups.items())[n + 1 :] for s in group]
            report.not_attempted(day, rest)
            return


def _send_edition(
    store: Store,
    batch: Batch,
    subscribers: list[Subscriber],
    issue: Edition,
    channel: Channel,
    dry_run: bool,
    report: SendReport,
) -> None:
    day = batch.day
    for n, subscriber in enumerate(subscribers):
        if dry_run:
            report.results.append(SendResult(subscriber.email, day, "dry-run"))
            continue
        earlier = batch.ledger.get(subscriber.id)
        delivery_id = earlier.message_id if earlier else channel.new_delivery_id()
        store.digests.mark(subscriber.id, day, "sending", delivery_id, utcnow())
        try:
            channel.deliver(issue, subscriber, delivery_id)
        except ChannelUnavailable as exc:
            store.digests.mark(subscriber.id, day, "failed", delivery_id, utcnow(), str(exc))
            report.results.append(SendResult(subscriber.email, day, "failed", str(exc)))
            report.stopped = str(exc)
            report.needs_setting = isinstance(exc, ChannelSetupError)
            report.not_attempted(day, subscribers[n + 1 :])
            log.error("stopped sending: %s", exc)
            return
        except DeliveryError as exc:
            outcome: Outcome = "rejected" if exc.permanent else "failed"
            store.digests.mark(subscriber.id, day, outcome, delivery_id, utcnow(), str(exc))
            if exc.permanent:
                store.subscribers.set_status(subscriber.id, "bounced")
            report.results.append(SendResult(subscriber.email, day, outcome, str(exc)))
            continue
        store.digests.mark(subscriber.id, day, "sent", delivery_id, utcnow())
        report.results.append(SendResult(subscriber.email, day, "sent"))
        progress.advance("messages")
