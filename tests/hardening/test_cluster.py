"""Several workers, exactly once: the deployed topology of deploy/README.md §3, for real.

PostgreSQL holds Prefect's database and the pipeline's state; `prefect server start`
runs on it; `deploy/bootstrap.py` and `prefect deploy --all --prefect-file
deploy/prefect.yaml` register everything; one `cpu` and two `gpu` workers are
started with `prefect worker start`, each process a machine of its own (its own
DIGEST_WORKER_NAME, its own process group). Then the faults an operator meets:
a worker killed mid-transcription, the Prefect server restarted while a worker
holds a `whisper` slot, PostgreSQL restarted under both workers, and two
daily-digest runs started at the same moment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from digest import jobs
from digest.store import Store
from tests.support.cluster import DIGEST, Cluster, wait_for
from tests.support.httpserver import LoopbackServer, Route
from tests.support.postgres import PostgresServer
from tests.support.prefect_server import LEASES_ON_DISK, PrefectServer, postgres_database
from tests.support.smtpserver import SmtpServer
from tests.support.speech import speak

pytestmark = pytest.mark.slow
SHORT = 12  # short episodes, a few seconds of speech each
READERS = ("ada@example.org", "grace@example.org", "linus@example.org")


def rss(items: list[str]) -> bytes:
    return (
        f"<rss version='2.0'><channel><title>Cluster Cast</title>{''.join(items)}</channel></rss>"
    ).encode()


@pytest.fixture
def cluster(pg_server: PostgresServer, tmp_path: Path) -> Iterator[Cluster]:
    url = postgres_database(pg_server, "cluster_prefect")
    (tmp_path / "prefect").mkdir()
    server = PrefectServer(tmp_path / "prefect", url, **LEASES_ON_DISK)
    made = None
    try:
        made = Cluster(server, tmp_path / "digest.toml", tmp_path)
        yield made
    finally:
        if made:
            made.stop()
        server.stop()


def test_two_workers_process_each_episode_once_heal_faults_and_send_once(
    cluster: Cluster,
    pg_server: PostgresServer,
    http_server: LoopbackServer,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    # A show with a long episode (the oldest, so first in the queue) and twelve short ones.
    from tests.support.seed import CORPUS

    words = (CORPUS / "kimi-k2.txt").read_text().split()
    long_audio = speak(" ".join(words[:700]), tmp_path / "long.mp3")  # about 5 minutes
    words = (CORPUS / "mercury-2.txt").read_text().split()
    items = []
    for n in range(SHORT + 1):
        path = (
            long_audio
            if n == 0
            else speak(
                f"This is short episode number {n}. "
                + " ".join(words[500 + 25 * n : 525 + 25 * n]),
                tmp_path / f"short-{n}.mp3",
            )
        )
        http_server.routes[f"/{n}.mp3"] = Route(path.read_bytes(), content_type="audio/mpeg")
        published = format_datetime(jobs.utcnow() - timedelta(hours=SHORT + 1 - n))
        items.append(
            f"<item><title>Part {n}</title><guid>part-{n}</guid><pubDate>{published}</pubDate>"
            f"<enclosure url='{http_server.url(f'/{n}.mp3')}' type='audio/mpeg'/></item>"
        )
    # ... and one whose audio is missing (404): it fails for good, until an operator
    # fixes the cause and runs `digest retry`.
    items.append(
        f"<item><title>Broken</title><guid>broken</guid><pubDate>{format_datetime(jobs.utcnow())}"
        f"</pubDate><enclosure url='{http_server.url('/broken.mp3')}' type='audio/mpeg'/></item>"
    )
    http_server.routes["/broken.mp3"] = Route(b"no such file", status=404)
    # ... and one whose host answers 503 nine times: every try of one run (the download
    # tries 3 times, its task 3 times), so the episode fails, and heals by itself later.
    items.append(
        f"<item><title>Flaky</title><guid>flaky</guid><pubDate>{format_datetime(jobs.utcnow())}"
        f"</pubDate><enclosure url='{http_server.url('/flaky.mp3')}' type='audio/mpeg'/></item>"
    )
    http_server.routes["/flaky.mp3"] = Route(
        (tmp_path / "short-2.mp3").read_bytes(), content_type="audio/mpeg", status_first=(503, 9)
    )
    http_server.routes["/feed.xml"] = Route(rss(items))
    database = pg_server.create_database("cluster_digest")
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[storage]\nstate_dir = "{tmp_path / "state"}"\ndatabase_url = "{database}"\n'
        "[feeds]\nallow_private_addresses = true\n"
        "[transcription]\nretry_after_minutes = 0\n"
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\nsecurity = "none"\n'
        '[web]\nbase_url = "http://digest.example.org"\n'
        "[orchestration]\nwhisper_slots = 2\nlease_seconds = 10\n"
    )

    # The commands of deploy/README.md §3, in order.
    cluster.run(DIGEST, "init")
    cluster.run(DIGEST, "feeds", "add", http_server.url("/feed.xml"))
    for reader in READERS:
        cluster.run(DIGEST, "subscribers", "add", reader)
    cluster.deploy()  # bootstrap.py, `prefect deploy --all`; schedules paused
    cluster.start_worker("cpu-1", "cpu")
    cluster.start_worker("gpu-a", "gpu", "--limit", "1")
    cluster.start_worker("gpu-b", "gpu", "--limit", "1")

    store = Store(database)
    poll = cluster.start_run("poll-feeds/poll-feeds")
    assert cluster.wait_final(poll.id, 180).state.is_completed()
    episodes = {e.title: e for e in store.episodes.list()}
    long_id, broken_id = episodes["Part 0"].id, episodes["Broken"].id
    flaky_id = episodes["Flaky"].id
    assert len(episodes) == SHORT + 3

    # A worker killed in the middle of a transcription.
    def transcribing() -> str | None:
        claim = store.claims.get(f"episode:{long_id}")
        downloaded = http_server.count("/0.mp3") >= 1
        return claim.owner.partition(":")[0] if claim and downloaded else None

    victim = wait_for(transcribing, 180, "the long episode's transcription")
    time.sleep(3)  # into Whisper (the model loads, then decodes ~150 s of speech)
    assert store.episodes.get(long_id).status == "pending", "killed before it finished"
    cluster.kill_worker(victim)
    killed_at = time.monotonic()
    survivor = "gpu-b" if victim == "gpu-a" else "gpu-a"
    cluster.start_worker("gpu-c", "gpu", "--limit", "1")  # the machine comes back

    # PostgreSQL restarted under the two workers, while short episodes are processed.
    wait_for(lambda: len(store.episodes.list(status="extracted")) >= 3, 240, "three episodes")
    pg_server.restart()

    # Every short episode is processed; the long one's lease runs out and a later
    # poll hands it to a worker again (its idempotency key carries the attempt).
    def polled_until(done: Callable[[], bool]) -> Callable[[], bool]:
        """`done`, with a poll (as the schedule would run) whenever an episode that may
        heal is failed: a poll enqueues it again (retry_after_minutes = 0 here)."""

        def check() -> bool:
            if done():
                return True
            if [e for e in store.episodes.list(status="failed") if e.id != broken_id]:
                cluster.wait_final(cluster.start_run("poll-feeds/poll-feeds").id, 180)
            return False

        return check

    def short_done() -> bool:
        extracted = store.episodes.list(status="extracted")
        return len([e for e in extracted if e.id not in (long_id, flaky_id)]) == SHORT

    wait_for(polled_until(short_done), 300, "the twelve short episodes")

    def lease_ran_out() -> bool:
        claim = store.claims.get(f"episode:{long_id}")
        return claim is None or claim.expires_at < jobs.utcnow()

    wait_for(lease_ran_out, 60, "the killed worker's lease to run out")
    repoll = cluster.start_run("poll-feeds/poll-feeds")

    # The Prefect server restarted while a worker holds a `whisper` slot for it.
    def second_attempt() -> bool:
        claim = store.claims.get(f"episode:{long_id}")
        return bool(claim and claim.expires_at > jobs.utcnow())

    wait_for(second_attempt, 180, "the long episode's second attempt", every=0.1)
    wait_for(cluster.transcribing, 60, "Whisper to run inside the slot", every=0.1)
    cluster.server.restart()
    wait_for(lambda: store.episodes.get(long_id).status == "extracted", 300, "the long episode")
    assert cluster.wait_final(repoll.id, 120).state.is_completed()
    wait_for(lambda: _whisper_active(cluster) == 0, 120, "the whisper slot to come back")

    # The flaky one healed without an operator: one failed attempt, then the next.
    wait_for(polled_until(lambda: store.episodes.get(flaky_id).status == "extracted"), 120, "Flaky")
    flaky = store.episodes.get(flaky_id)
    assert (flaky.attempts, flaky.runs) == (1, 2), (flaky, http_server.count("/flaky.mp3"))
    assert http_server.count("/flaky.mp3") == 10, "one run's nine 503s, then the next run's 200"
    del episodes["Flaky"]

    # The broken episode failed for good: listed with its reason by the poll flow's
    # artifact and `digest status`, healed by `digest retry` once the file is there.
    broken = wait_for(
        lambda: (e := store.episodes.get(broken_id)).status == "failed" and e, 120, "the 404"
    )
    assert broken.retry_at is None and "404" in (broken.error or "")
    poll = cluster.start_run("poll-feeds/poll-feeds")  # its artifact lists what failed
    assert cluster.wait_final(poll.id, 120).state.is_completed()
    with cluster.client() as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
        from prefect.client.schemas.sorting import ArtifactSort

        [latest] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["failed-episodes"])),
            limit=1,
            sort=ArtifactSort.CREATED_DESC,
        )
    listed = {row["episode"]: row for row in json.loads(str(latest.data))}
    assert listed[broken_id]["next retry"] == "never: fix the cause, then `digest retry`"
    assert "404" in listed[broken_id]["error"]
    status = json.loads(cluster.run(DIGEST, "status", "--json"))
    assert [f["id"] for f in status["failed_episodes"]] == [broken_id]
    http_server.routes["/broken.mp3"] = Route(
        (tmp_path / "short-1.mp3").read_bytes(), content_type="audio/mpeg"
    )
    assert "Enqueued Broken" in cluster.run(DIGEST, "retry", broken_id)
    wait_for(lambda: store.episodes.get(broken_id).status == "extracted", 120, "the retry")
    del episodes["Broken"]

    # Exactly once: each short episode claimed by one run, downloaded once.
    for title, episode in episodes.items():
        after = store.episodes.get(episode.id)
        assert after.status == "extracted", (title, after.status, after.error)
        if episode.id != long_id:
            assert after.runs == 1, (title, after.runs)
            assert http_server.count(f"/{title.split()[1]}.mp3") == 1, title
    assert store.episodes.get(long_id).runs == 2, "the killed attempt and the one that finished"
    assert store.insights.for_episode(long_id), "five minutes of speech give insights"

    # Two daily-digest runs at the same moment: one message per reader.
    today = jobs.utcnow().date().isoformat()
    runs = [cluster.start_run("daily-digest/daily-digest", date=today) for _ in range(2)]
    finals = [cluster.wait_final(r.id, 180) for r in runs]
    assert all(f.state.is_completed() for f in finals), [f.state for f in finals]
    assert sorted(m["To"] for m in smtp_server.mailbox.messages) == sorted(READERS)

    # The killed worker's run ends Crashed: its heartbeats stopped (bootstrap's automation).
    with cluster.client() as client:
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        def crashed() -> list[Any]:
            states = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED]))
            return client.read_flow_runs(flow_run_filter=FlowRunFilter(state=states))

        left = 240 - (time.monotonic() - killed_at)
        [run] = wait_for(crashed, max(left, 30), "the killed worker's run to be marked Crashed")
        assert run.parameters["episode_id"] == long_id
    assert survivor in cluster.workers
    assert all(w.poll() is None for w in cluster.workers.values()), "every worker lived on"
    store.close()


def _whisper_active(cluster: Cluster) -> int:
    try:
        with cluster.client() as client:
            return int(client.read_global_concurrency_limit_by_name("whisper").active_slots)
    except Exception:
        return 0
