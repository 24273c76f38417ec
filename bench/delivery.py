"""Delivery: one day's digest to many subscribers through a loopback SMTP server.

The pipeline's own `send_digests` (render once, personal links substituted, ledger
row before and after each hand-over, one SMTP connection reused) sends to an
aiosmtpd server in another process that counts recipients and Message-IDs. The
second scenario drops the connection once halfway; the ledger must make the
retry neither lose nor double a message. The third spreads the same subscribers
over 50 distinct show selections (six shows): 50 editions selected, frozen and
rendered, each reader's message built from their edition's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.common import TARGET_HEADERS, Helper, current_rss_mb, repeat, table, verdict

TARGET_RATE = 200.0
SELECTIONS = 50


class Sink(Helper):
    """A counting receiver on loopback (bench.smtpsink, bench.hooksink): its port, and
    its counts as JSON."""

    def __init__(self, module: str) -> None:
        super().__init__(module)
        self.port = int(self.ready)

    def tell(self, command: str) -> dict[str, Any]:
        return dict(json.loads(self.ask(command)))


def template(workdir: Path, subscribers: int) -> tuple[Path, Any]:
    """A state database with the corpus insights and `subscribers` active subscribers."""
    from digest.core.clock import utcnow
    from digest.core.config import config_from_dict
    from digest.store import Store
    from tests.support.seed import seed_insights

    db = workdir / "template.db"
    config = config_from_dict(
        {"storage": {"state_dir": str(workdir), "database_url": f"sqlite:///{db}"}},
        base_dir=workdir,
    )
    with Store(config.database_url) as store:
        seed_insights(store, config)
        now = utcnow()
        for n in range(subscribers):
            store.subscribers.add(f"reader{n}@example.com", now)
    return db, config


def with_selections(workdir: Path, db: Path, config: Any, selections: int) -> Path:
    """A copy of the template with five more shows and the readers spread over
    `selections` distinct sets of shows (one update per set, not per reader)."""
    from itertools import combinations

    from digest.core.models import selection_key
    from digest.store import Store
    from digest.store.schema import subscribers
    from tests.support.seed import seed_insights

    copy = workdir / "selections.db"
    shutil.copyfile(db, copy)
    with Store(f"sqlite:///{copy}") as store:
        for n in range(5):
            seed_insights(store, config, show=f"Show {n + 2}")
        ids = sorted(f.id for f in store.feeds.list())
        sets = [c for size in range(1, len(ids) + 1) for c in combinations(ids, size)]
        chosen = sets[:selections]
        assert len({selection_key(c) for c in chosen}) == selections
        with store.engine.begin() as conn:
            for n, shows in enumerate(chosen):
                conn.execute(
                    subscribers.update()
                    .where(subscribers.c.id % selections == n)
                    .values(shows=json.dumps(list(shows)))
                )
    return copy


def with_channels(workdir: Path, spread: Path, hook_url: str) -> Path:
    """The 50-selection copy with 10 % of readers following topics and the readers split
    in thirds: email only, a webhook instead, a private feed instead."""
    import sqlalchemy as sa

    from digest.core.clock import utcnow
    from digest.store import Store
    from digest.store.schema import endpoints, subscribers

    copy = workdir / "channels.db"
    shutil.copyfile(spread, copy)
    now = utcnow()
    with Store(f"sqlite:///{copy}") as store, store.engine.begin() as conn:
        conn.execute(
            subscribers.update().where(subscribers.c.id % 10 == 0).values(topics="model training")
        )
        ids = [row.id for row in conn.execute(sa.select(subscribers.c.id))]
        rows = [
            {"subscriber_id": i, "kind": kind, "target": target, "format": fmt,
             "secret": f"s{i:063d}", "created_at": now}
            for i in ids
            for kind, target, fmt in (
                [("webhook", hook_url, "json")] if i % 3 == 1
                else [("feed", "", "")] if i % 3 == 2 else []
            )
        ]  # fmt: skip
        if rows:
            conn.execute(endpoints.insert(), rows)
    return copy


def editions_on(store: Any, day: str) -> int:
    """Editions frozen for the day (the all-shows archive edition included)."""
    import sqlalchemy as sa

    from digest.store.schema import digests

    query = sa.select(sa.func.count()).where(digests.c.date == day)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def run(subscribers: int, repeats: int) -> dict[str, Any]:
    from dataclasses import replace

    from digest.core.clock import utcnow
    from digest.jobs.send import send_digests
    from digest.store import Store

    workdir = Path(tempfile.mkdtemp(prefix="bench-deliver-"))
    db, config = template(workdir, subscribers)
    sink = Sink("smtpsink")
    hooks = Sink("hooksink")
    config = replace(
        config,
        smtp=replace(config.smtp, host="127.0.0.1", port=sink.port, security="none"),
        web=replace(config.web, base_url="https://digest.example.org"),  # mail needs public links
        webhook=replace(config.webhook, allow_private_addresses=True),  # the sink is local
        voice=replace(config.voice, enabled=False),  # reading aloud is measured on its own
    )
    day = utcnow().date().isoformat()
    state: dict[str, Any] = {}

    def fresh(source: Path = db) -> None:
        if "store" in state:
            state["store"].close()
        copy = workdir / "run.db"
        shutil.copyfile(source, copy)
        state["store"] = Store(f"sqlite:///{copy}")
        sink.tell("reset")

    def send() -> None:
        state["report"] = send_digests(state["store"], config, date=day)
        state["rss"] = current_rss_mb()

    try:
        timing = repeat(send, repeats, setup=fresh)
        clean = sink.tell("stats")
        clean["sent"] = state["report"].count("sent")
        clean["rss_mb"] = state["rss"]
        fresh()
        sink.tell(f"drop-after {subscribers // 2}")
        dropped = repeat(send, 1, warmup=False)
        after_drop = sink.tell("stats")
        after_drop["sent"] = state["report"].count("sent")
        after_drop["not_sent"] = subscribers - after_drop["sent"]
        spread = with_selections(workdir, db, config, SELECTIONS)
        selected = repeat(send, repeats, setup=lambda: fresh(spread))
        per_selection = sink.tell("stats")
        per_selection["sent"] = state["report"].count("sent")
        per_selection["editions"] = editions_on(state["store"], day)
        mixed = with_channels(workdir, spread, f"http://127.0.0.1:{hooks.port}/hook")
        hooks.tell("reset")
        channels = repeat(send, 1, setup=lambda: fresh(mixed), warmup=False)
        by_channel = {
            kind: sum(r.outcome == "sent" and r.channel.split(":")[0] == kind
                      for r in state["report"].results)
            for kind in ("email", "webhook", "feed")
        }  # fmt: skip
        webhooks = hooks.tell("stats")
        state["store"].close()
    finally:
        sink.close()
        hooks.close()
    return {
        "subscribers": subscribers,
        "repeats": repeats,
        "wall_s": timing.wall_s,
        "messages_per_s": subscribers / timing.wall_s,
        "clean": clean,
        "drop_wall_s": dropped.wall_s,
        "drop_messages_per_s": subscribers / dropped.wall_s,
        "drop": after_drop,
        "selections": SELECTIONS,
        "selections_wall_s": selected.wall_s,
        "selections_messages_per_s": subscribers / selected.wall_s,
        "per_selection": per_selection,
        "channels_wall_s": channels.wall_s,
        "channels_deliveries": sum(by_channel.values()),
        "channels_per_s": sum(by_channel.values()) / channels.wall_s,
        "channels_by_kind": by_channel,
        "channels_webhooks": webhooks,
    }


def targets(r: dict[str, Any]) -> list[list[Any]]:
    """Each target the issue sets, the measured value, and whether it was met."""
    n = r["subscribers"]
    return [
        ["messages per second", f"{r['messages_per_s']:.0f}", f"≥ {TARGET_RATE:g}",
         verdict(r["messages_per_s"], TARGET_RATE)],
        ["messages per second, 50 selections", f"{r['selections_messages_per_s']:.0f}",
         f"≥ {TARGET_RATE:g}", verdict(r["selections_messages_per_s"], TARGET_RATE)],
        ["deliveries per second, mixed channels", f"{r.get('channels_per_s', 0):.0f}",
         f"≥ {TARGET_RATE:g}", verdict(r.get("channels_per_s", 0), TARGET_RATE)],
        ["lost or doubled after a drop", r["drop"]["doubled"] + n - r["drop"]["recipients"],
         "0", verdict(r["drop"]["doubled"] + n - r["drop"]["recipients"], 0, at_most=True)],
    ]  # fmt: skip


def report(r: dict[str, Any]) -> str:
    n = r["subscribers"]
    rows = []
    for label, wall, rate, s in (
        ("clean run", r["wall_s"], r["messages_per_s"], r["clean"]),
        (f"connection dropped at {n // 2}", r["drop_wall_s"], r["drop_messages_per_s"], r["drop"]),
        (
            f"{r['selections']} show selections",
            r["selections_wall_s"],
            r["selections_messages_per_s"],
            r["per_selection"],
        ),
    ):
        rows.append(
            [label, f"{wall:.1f}", f"{rate:.0f}", s["messages"], s["recipients"], s["doubled"],
             n - s["recipients"], s["connections"]]
        )  # fmt: skip
    headers = ["scenario", "wall s", "msg/s", "received", "recipients", "doubled", "lost",
               "connections"]  # fmt: skip
    title = f"Delivery — {n} subscribers, loopback SMTP, median of {r['repeats']} (drop: one run)"
    mixed = ""
    if "channels_per_s" in r:
        kinds = r["channels_by_kind"]
        mixed = (
            f"Mixed channels (the {r['selections']} selections, 10 % with topics, a third each "
            f"on email, a webhook and a private feed): {r['channels_deliveries']} deliveries "
            f"({kinds['email']} emails, {kinds['webhook']} signed POSTs, {kinds['feed']} feed "
            f"editions) in {r['channels_wall_s']:.1f} s, {r['channels_per_s']:.0f} per second; "
            f"the receiver saw {r['channels_webhooks']['posts']} POSTs, "
            f"{r['channels_webhooks']['doubled']} doubled.\n\n"
        )
    return (
        table(title, headers, rows)
        + "\n\n"
        + mixed
        + f"RSS after sending: {r['clean']['rss_mb']:.0f} MB. With {r['selections']} "
        f"selections, {r['per_selection']['editions']} editions were frozen and rendered "
        "(one per selection, plus the archive's all-shows edition).\n\n"
        + table("Delivery against targets", TARGET_HEADERS, targets(r))
    )
