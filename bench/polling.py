"""Feed polling: a first poll of many feeds against an unchanged re-poll (ETag → 304).

The feeds are served from another process on loopback (see bench/feedserver.py);
every 20th feed answers 500, another 404, another redirects. The pipeline's own
`poll_feeds` runs against a fresh SQLite state for each first-poll repeat.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.common import TARGET_HEADERS, Helper, current_rss_mb, repeat, table, verdict

TARGET_SPEEDUP = 20.0


class FeedServer(Helper):
    """The feed server process and the count of body bytes it has sent."""

    def __init__(self, count: int) -> None:
        super().__init__("feedserver", str(count))
        port, size = self.ready.split()
        self.base = f"http://127.0.0.1:{port}"
        self.feed_bytes = int(size)

    def bytes_sent(self) -> int:
        return int(self.ask("bytes"))


def run(feeds: int, repeats: int) -> dict[str, Any]:
    from digest.core.clock import utcnow
    from digest.core.config import config_from_dict
    from digest.jobs.poll import poll_feeds
    from digest.store import Store

    server = FeedServer(feeds)
    workdir = Path(tempfile.mkdtemp(prefix="bench-poll-"))
    state: dict[str, Any] = {}

    def fresh() -> None:
        if "store" in state:
            state["store"].close()
        db = workdir / f"state-{len(list(workdir.glob('*.db')))}.db"
        config = config_from_dict(
            {
                "storage": {"database_url": f"sqlite:///{db}"},
                "feeds": {"allow_private_addresses": True},
            },
            base_dir=workdir,
        )
        store = Store(config.database_url)
        now = utcnow()
        for n in range(feeds):
            store.feeds.add(f"{server.base}/feed/{n}", now)
        state.update(store=store, config=config)

    def poll() -> None:
        state["results"] = poll_feeds(state["store"], state["config"])

    try:
        before = server.bytes_sent()
        first = repeat(poll, repeats, setup=fresh)
        first_bytes = (server.bytes_sent() - before) / (repeats + 1)
        outcomes = _outcomes(state["results"])
        poll()  # the state now holds every ETag; re-polls below are unchanged
        rss: list[float] = []
        before = server.bytes_sent()
        again = repeat(lambda: (poll(), rss.append(current_rss_mb())), repeats)
        again_bytes = (server.bytes_sent() - before) / (repeats + 1)
        repoll_outcomes = _outcomes(state["results"])
        state["store"].close()
    finally:
        server.close()
    return {
        "feeds": feeds,
        "feed_kb": server.feed_bytes / 1024,
        "first_poll_s": first.wall_s,
        "repoll_s": again.wall_s,
        "repoll_speedup": first.wall_s / again.wall_s,
        "first_feeds_per_s": feeds / first.wall_s,
        "repoll_feeds_per_s": feeds / again.wall_s,
        "first_mb_transferred": first_bytes / 2**20,
        "repoll_mb_transferred": again_bytes / 2**20,
        "repoll_rss_growth_mb": max(rss) - min(rss),
        "rss_mb": max(rss),
        "first_outcomes": outcomes,
        "repoll_outcomes": repoll_outcomes,
        "repeats": repeats,
    }


def _outcomes(results: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return counts


def targets(r: dict[str, Any]) -> list[list[Any]]:
    """Each target the issue sets, the measured value, and whether it was met."""
    return [
        ["re-poll speed-up", f"{r['repoll_speedup']:.1f}×", f"≥ {TARGET_SPEEDUP:g}×",
         verdict(r["repoll_speedup"], TARGET_SPEEDUP)],
        ["RSS growth over re-polls", f"{r['repoll_rss_growth_mb']:.1f} MB", "flat",
         verdict(r["repoll_rss_growth_mb"], 20, at_most=True)],
    ]  # fmt: skip


def report(r: dict[str, Any]) -> str:
    rows = [
        ["first poll", f"{r['first_poll_s']:.2f}", f"{r['first_feeds_per_s']:.0f}",
         f"{r['first_mb_transferred']:.1f}", _fmt(r["first_outcomes"])],
        ["unchanged re-poll", f"{r['repoll_s']:.2f}", f"{r['repoll_feeds_per_s']:.0f}",
         f"{r['repoll_mb_transferred']:.2f}", _fmt(r["repoll_outcomes"])],
    ]  # fmt: skip
    title = f"Feed polling — {r['feeds']} feeds of ~{r['feed_kb']:.0f} KB, median of {r['repeats']}"
    return (
        table(title, ["poll", "wall s", "feeds/s", "MB transferred", "outcomes"], rows)
        + "\n\n"
        + table("Feed polling against targets", TARGET_HEADERS, targets(r))
    )


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
