"""Scale: episodes per hour with one and with two `gpu` process workers on this machine,
and how long a new episode takes from its feed to its stored insights.

The topology is deploy/README.md §3 (tests/support/cluster.py starts it): Prefect
server and the pipeline's state on PostgreSQL, `prefect deploy`, one `cpu` worker for
the poll flow and N `gpu` workers with `--limit 1`. Each round serves a fresh feed of
distinct spoken episodes, starts one poll-feeds run and waits until every episode's
insights are stored.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from bench.common import table

WORKER_COUNTS = (1, 2)


def _feed(server: Any, folder: Path, count: int, words: int) -> tuple[float, str]:
    """`count` spoken episodes of about `words` words; their seconds of audio, the feed URL."""
    from bench.audio import SCRIPTS, script_text
    from digest import jobs
    from digest.transcripts.audio import probe
    from tests.support.httpserver import Route
    from tests.support.speech import speak

    text = " ".join(script_text(name) for name in SCRIPTS).split()
    items, seconds = [], 0.0
    for n in range(count):
        path = speak(" ".join(text[n * words : (n + 1) * words]), folder / f"{n}.mp3")
        seconds += probe(path)
        server.routes[f"/{n}.mp3"] = Route(path.read_bytes(), content_type="audio/mpeg")
        published = format_datetime(jobs.utcnow() - timedelta(minutes=count - n))
        items.append(
            f"<item><title>Episode {n}</title><guid>e{n}</guid><pubDate>{published}</pubDate>"
            f"<enclosure url='{server.url(f'/{n}.mp3')}' type='audio/mpeg'/></item>"
        )
    body = f"<rss version='2.0'><channel><title>Bench</title>{''.join(items)}</channel></rss>"
    server.routes["/feed.xml"] = Route(body.encode())
    return seconds, server.url("/feed.xml")


def _round(postgres: Any, server: Any, workers: int, count: int, words: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from digest import jobs
    from digest.store import Store
    from digest.store.schema import extractions
    from tests.support.cluster import DIGEST, Cluster
    from tests.support.httpserver import LoopbackServer
    from tests.support.waiting import wait_for

    folder = Path(tempfile.mkdtemp(prefix=f"bench-workers-{workers}-"))
    feeds = LoopbackServer()
    audio_s, feed_url = _feed(feeds, folder, count, words)
    database = postgres.create_database(f"bench_workers_{workers}_{int(time.time())}")
    config = folder / "digest.toml"
    config.write_text(
        f'[storage]\nstate_dir = "{folder / "state"}"\ndatabase_url = "{database}"\n'
        "[feeds]\nallow_private_addresses = true\n"
        f"[orchestration]\nwhisper_slots = {workers}\n"
    )
    cluster = Cluster(server, config, folder)
    try:
        cluster.run(DIGEST, "init")
        cluster.run(DIGEST, "feeds", "add", feed_url)
        cluster.deploy()
        cluster.start_worker("cpu-1", "cpu")
        for n in range(workers):
            cluster.start_worker(f"gpu-{n}", "gpu", "--limit", "1")
        time.sleep(5)  # the workers' first poll of their pool
        started = jobs.utcnow()
        cluster.start_run("poll-feeds/poll-feeds")
        with Store(database) as store:

            def done() -> bool:
                return len(store.episodes.list(status="extracted")) == count

            wait_for(done, 1800, f"{count} episodes on {workers} worker(s)", every=1.0)
            with store.engine.connect() as conn:
                stored = dict(
                    conn.execute(
                        sa.select(
                            extractions.c.episode_id, sa.func.min(extractions.c.created_at)
                        ).group_by(extractions.c.episode_id)
                    ).all()
                )
    finally:
        cluster.stop()
        feeds.close()
    latencies = [(at - started).total_seconds() for at in stored.values()]
    wall = max(latencies)
    return {
        "workers": workers,
        "episodes": count,
        "audio_s": audio_s,
        "wall_s": wall,
        "episodes_per_hour": count / wall * 3600,
        "audio_hours_per_hour": audio_s / wall,
        "first_latency_s": min(latencies),
        "median_latency_s": statistics.median(latencies),
    }


def run(quick: bool) -> dict[str, Any]:
    from bench.orchestration import prefect_database
    from tests.support.prefect_server import LEASES_ON_DISK, PrefectServer

    count, words = (8, 90) if quick else (16, 400)  # ~35 s or ~2.5 min of speech each
    home = Path(tempfile.mkdtemp(prefix="bench-workers-prefect-"))
    postgres, url = prefect_database(home)
    if postgres is None:
        raise RuntimeError("the workers stage needs PostgreSQL (scripts/system-packages.sh)")
    server = PrefectServer(home, url, **LEASES_ON_DISK)
    try:
        rounds = {str(n): _round(postgres, server, n, count, words) for n in WORKER_COUNTS}
    finally:
        server.stop()
        postgres.stop()
    one, two = rounds["1"], rounds["2"]
    return {
        "rounds": rounds,
        "episodes_per_hour_1": one["episodes_per_hour"],
        "episodes_per_hour_2": two["episodes_per_hour"],
        "scaling_2_workers": two["episodes_per_hour"] / one["episodes_per_hour"],
        "median_latency_s": one["median_latency_s"],
    }


def report(r: dict[str, Any]) -> str:
    rows = [
        [
            w["workers"],
            w["episodes"],
            f"{w['audio_s'] / w['episodes']:.0f}",
            f"{w['wall_s']:.0f}",
            f"{w['episodes_per_hour']:.0f}",
            f"{w['audio_hours_per_hour']:.1f}",
            f"{w['first_latency_s']:.0f}",
            f"{w['median_latency_s']:.0f}",
        ]
        for w in r["rounds"].values()
    ]
    headers = [
        "gpu workers", "episodes", "audio s each", "wall s", "episodes / hour",
        "audio h / h", "first insights s", "median s",
    ]  # fmt: skip
    title = "Workers — episodes per hour and feed-to-insights latency (one poll, fresh feed)"
    return table(title, headers, rows)
