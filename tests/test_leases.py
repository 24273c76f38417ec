"""Claims with leases, and failures that heal: the layer several workers stand on.

Run on SQLite and on a real PostgreSQL (the `db_url` fixture), since the claim's
atomicity is the database's: threads racing here stand in for workers on machines.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest import jobs
from digest.cli import cli
from digest.core.errors import FetchError, MediaError
from digest.core.models import Episode
from digest.jobs.leases import Claimed, Leases, owner_id
from digest.store import Store
from tests.support.seed import seed_transcripts
from tests.support.waiting import wait_for


def test_of_many_racing_takers_exactly_one_wins(store: Store) -> None:
    now = jobs.utcnow()
    start = threading.Barrier(8)
    won: list[str] = []

    def taker(n: int) -> None:
        start.wait()
        if store.claims.take("episode:x", f"m{n}:1", now, now + timedelta(minutes=2)) is None:
            won.append(f"m{n}:1")

    threads = [threading.Thread(target=taker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    holder = store.claims.get("episode:x")
    assert holder is not None and holder.owner == won[0]


def test_a_lease_that_ran_out_is_taken_over_and_the_old_owner_cannot_renew(store: Store) -> None:
    now = jobs.utcnow()
    assert store.claims.take("send", "a:1", now, now + timedelta(seconds=30)) is None
    held = store.claims.take("send", "b:2", now, now + timedelta(seconds=30))
    assert held is not None and held.owner == "a:1", "a live lease keeps others out"
    later = now + timedelta(seconds=31)
    assert store.claims.take("send", "b:2", later, later + timedelta(seconds=30)) is None
    assert not store.claims.renew("send", "a:1", later + timedelta(minutes=5)), "a lost claim"
    store.claims.release("send", "a:1")  # a late release by the old owner changes nothing
    holder = store.claims.get("send")
    assert holder is not None and holder.owner == "b:2"


def test_a_claim_of_a_process_that_is_gone_from_this_machine_is_free_at_once(
    store: Store,
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    machine = owner_id().rpartition(":")[0]
    now = jobs.utcnow()
    store.claims.take("send", f"{machine}:{gone.pid}", now, now + timedelta(hours=1))
    assert Leases(store, 60).store.claims.get("send") is not None
    with Leases(store, 60).hold("send"):  # no hour's wait: the holder cannot renew
        holder = store.claims.get("send")
        assert holder is not None and holder.owner.startswith(f"{owner_id()}/")
    elsewhere = "other-machine:1"
    store.claims.take("send", elsewhere, now, now + timedelta(hours=1))
    with pytest.raises(Claimed, match="other-machine:1"), Leases(store, 60).hold("send"):
        pass  # another machine's process cannot be checked: its lease decides


class Clock:
    """A clock the test moves on, so a lease can run out without the test waiting."""

    def __init__(self) -> None:
        self.now = jobs.utcnow()

    def __call__(self) -> datetime:
        return self.now


def test_the_holder_renews_its_lease_while_it_works(store: Store) -> None:
    clock = Clock()
    leases = Leases(store, lease_seconds=0.9, owner="worker-a:1", clock=clock)
    with leases.hold("episode:y"):
        first = store.claims.get("episode:y")
        assert first is not None and first.expires_at == clock.now + timedelta(seconds=0.9)
        clock.now += timedelta(minutes=10)  # long past the lease: only a renewal keeps it
        renewed = wait_for(
            lambda: (c := store.claims.get("episode:y")) and c.expires_at > clock.now and c,
            30,
            "the renewer thread to extend the lease",
            every=0.05,
        )
        assert renewed.owner == "worker-a:1"
        taken = store.claims.take(
            "episode:y", "worker-b:2", clock.now, clock.now + timedelta(seconds=9)
        )
        assert taken is not None and taken.owner == "worker-a:1", "still held: it was renewed"
    assert store.claims.get("episode:y") is None, "released at the end"


def test_a_holder_that_stops_renewing_loses_the_claim(store: Store) -> None:
    clock = Clock()
    assert (
        store.claims.take("episode:z", "dead:1", clock.now, clock.now + timedelta(seconds=90))
        is None
    )
    clock.now += timedelta(seconds=91)  # nobody renewed it: the lease ran out
    with Leases(store, 90, owner="worker-b:2", clock=clock).hold("episode:z"):
        holder = store.claims.get("episode:z")
        assert holder is not None and holder.owner == "worker-b:2"


class CountingSteps:
    """Real work would transcribe; here each step counts who ran it, and holds the claim
    until `release` is set (the other worker has been turned away), so the two really
    overlap without a sleep standing in for it."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.calls: list[str] = []

    def obtain(self, episode: Episode) -> jobs.TranscriptResult | Path:
        self.calls.append(episode.id)
        assert self.release.wait(60), "the other worker never came back"
        return jobs.TranscriptResult(episode.id, episode.title, "cached")

    def transcribe(self, episode: Episode, media: Path) -> jobs.TranscriptResult:
        raise AssertionError("not reached: obtain found a transcript")

    def extract(self, episode: Episode) -> jobs.ExtractResult:
        return jobs.ExtractResult(episode.id, episode.title, "cached")


def test_two_workers_taking_one_episode_at_once_process_it_once(
    store: Store, make_config: Any, db_url: str
) -> None:
    [episode_id, *_] = seed_transcripts(store, scripts=("kimi-k2",))
    episode = store.episodes.get(episode_id)
    returned = [threading.Event(), threading.Event()]
    steps = [CountingSteps(returned[1]), CountingSteps(returned[0])]  # each waits on the other
    outcomes: list[jobs.EpisodeOutcome] = []
    start = threading.Barrier(2)

    def worker(n: int) -> None:
        leases = Leases(store, 30, owner=f"worker-{n}:{n}")
        start.wait()
        try:
            outcomes.append(jobs.process_episode(episode, steps[n], _no_fail, leases))
        finally:
            returned[n].set()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.outcome for o in outcomes) == ["claimed", "completed"]
    assert sum(len(s.calls) for s in steps) == 1, "one worker did the work"
    claimed = next(o for o in outcomes if o.outcome == "claimed")
    assert "being worked on by worker-" in (claimed.error or "")
    assert store.episodes.get(episode_id).runs == 1, "the run that claimed it is counted"


def _no_fail(episode: Episode, exc: BaseException) -> jobs.TranscriptResult:
    raise AssertionError(f"no step fails here: {exc}")


def test_a_failure_that_may_pass_is_retried_after_a_backoff_and_a_permanent_one_is_not(
    make_config: Any, db_url: str
) -> None:
    config = make_config(
        storage={"database_url": db_url},
        transcription={"retry_after_minutes": 10, "max_attempts": 3},
    )
    with Store(config.database_url) as store, jobs.Transcription(store, config) as transcription:
        flaky, corrupt = seed_transcripts(store, scripts=("kimi-k2", "mercury-2"))
        extractor = jobs.Extractor(store, config)
        for episode_id in (flaky, corrupt):
            store.episodes.set_status(episode_id, "pending", jobs.utcnow())
        before = jobs.utcnow()
        transcription.fail(
            store.episodes.get(flaky), FetchError("cdn.example refused", retryable=True)
        )
        transcription.fail(store.episodes.get(corrupt), MediaError("HTML served as audio"))
        first = store.episodes.get(flaky)
        assert first.status == "failed" and first.attempts == 1 and first.retry_at is not None
        assert timedelta(minutes=9) < first.retry_at - before < timedelta(minutes=11)
        assert store.episodes.get(corrupt).retry_at is None
        due = lambda at: [e.id for e in jobs.work_list(store, config, extractor, now=at)]  # noqa: E731
        assert flaky not in due(before), "not before its backoff"
        assert due(first.retry_at + timedelta(seconds=1)) == [flaky]
        transcription.fail(first, FetchError("refused again", retryable=True))
        second = store.episodes.get(flaky)
        assert second.retry_at is not None
        assert second.retry_at - jobs.utcnow() > timedelta(minutes=19), "the backoff doubles"
        transcription.fail(second, FetchError("refused a third time", retryable=True))
        assert store.episodes.get(flaky).retry_at is None, "max_attempts used up"
        far = jobs.utcnow() + timedelta(days=30)
        assert due(far) == [], "a permanent failure and a spent one stay failed"
        failures = {f.episode_id: f for f in jobs.failures(store, config)}
        assert failures[corrupt].next_retry.startswith("never")
        assert failures[corrupt].error.endswith("HTML served as audio")


def test_two_sends_started_together_send_each_subscriber_once(
    make_config: Any, db_url: str, smtp_server: Any
) -> None:
    config = make_config(
        storage={"database_url": db_url},
        smtp={"host": "127.0.0.1", "port": smtp_server.port, "security": "none"},
    )
    with Store(config.database_url) as store:
        from tests.support.seed import seed_insights

        seed_insights(store, config)
        for n in range(30):
            store.subscribers.add(f"reader{n}@example.com", jobs.utcnow())
        start = threading.Barrier(2)
        reports: list[jobs.SendReport] = []

        def run() -> None:
            start.wait()
            reports.append(jobs.send_digests(store, config))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    recipients = [m["To"] for m in smtp_server.mailbox.messages]
    assert sorted(recipients) == sorted(f"reader{n}@example.com" for n in range(30))
    assert sorted(r.count("sent") for r in reports) == [0, 30]
    assert any(r.elsewhere for r in reports), "the second run says another one is sending"


def test_digest_retry_and_status_show_and_heal_a_failed_episode(tmp_path: Path) -> None:
    config_path = tmp_path / "digest.toml"
    config_path.write_text(f'[storage]\nstate_dir = "{tmp_path / "state"}"\n')
    runner = CliRunner()
    base = ["--config", str(config_path)]
    assert runner.invoke(cli, [*base, "init"]).exit_code == 0
    with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
        [episode_id] = seed_transcripts(store, scripts=("kimi-k2",))
        store.episodes.record_failure(episode_id, jobs.utcnow(), "'Episode 1': HTTP 404")
    shown = runner.invoke(cli, [*base, "status", "--json"])
    assert shown.exit_code == 0, shown.output
    import json

    [failed] = json.loads(shown.output)["failed_episodes"]
    assert failed["id"] == episode_id and failed["retry_at"] is None
    assert failed["error"] == "'Episode 1': HTTP 404" and failed["attempts"] == 1
    text = runner.invoke(cli, [*base, "status"]).output
    assert "HTTP 404" in text and "never: fix the cause, then `digest retry`" in text
    assert runner.invoke(cli, [*base, "retry"]).exit_code != 0, "nothing named"
    healed = runner.invoke(cli, [*base, "retry", episode_id], env={"PREFECT_API_URL": ""})
    assert healed.exit_code == 0, healed.output
    assert "1 completed" in healed.output
    with Store(f"sqlite:///{tmp_path / 'state' / 'digest.db'}") as store:
        episode = store.episodes.get(episode_id)
        assert episode.status == "extracted" and episode.attempts == 0
        assert store.insights.for_episode(episode_id), "insights were extracted"
    nothing = runner.invoke(cli, [*base, "retry", "--all-failed"], env={"PREFECT_API_URL": ""})
    assert nothing.exit_code == 0 and "No failed episodes." in nothing.output
