"""The pipeline as Prefect flows. Read this file to see the whole job on one screen.

poll-feeds ──▶ process-episode (one run per new episode) ──▶ daily-digest
   └── every task calls one `digest.jobs` unit, and the order of the units is
       `digest.jobs` own (`process_episode`, `work_list`); what lives here is policy:
       retries, concurrency, rate limits, artifacts, events.

Retries (the README's "What is retried" says the same):
- fetch-feed and obtain (download) retry network faults (refused, reset, timeout,
  HTTP 408/429/5xx) twice, after 2 and 10 s; a 404, a corrupt file or a bad config
  is not retried.
- a failed episode whose failure may pass (a network fault) is enqueued again by a
  later poll once `[transcription] retry_after_minutes` (doubling) has passed, while
  attempts are under `max_attempts`; a 404 or a corrupt file stays failed.
- extract retries while the LLM endpoint is down, after 1, 3 and 10 minutes, in
  deployed runs only; a local `digest run` leaves the episode waiting for the next.
- send retries a server that is busy or unreachable twice, 5 minutes apart, in
  deployed runs only; a local run leaves the undelivered messages to the next run
  (the ledger sends each once). A refused login, an unverified certificate or
  missing STARTTLS is never retried: only fixing the setting helps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import rate_limit
from prefect.deployments import run_deployment
from prefect.events import emit_event
from prefect.runtime import flow_run as current_flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from digest import jobs
from digest.core.errors import DigestError, ServiceUnavailable
from digest.core.models import Episode, FetchResult

from . import artifacts
from .context import context, deployed, prompt_override, transcription

# Prefect ships the `digest` logger's records to the UI; make sure INFO gets that far
# even when the host process configured the root logger for warnings only.
if logging.getLogger("digest").level == logging.NOTSET:
    logging.getLogger("digest").setLevel(logging.INFO)

PROCESS_DEPLOYMENT = "process-episode/process-episode"
# Every task's inputs are ids and paths into the state database, which is the cache:
# Prefect's own input hashing and result files would only cost time.


def _raised(state: Any) -> BaseException | None:
    try:
        state.result()
    except BaseException as exc:
        return exc
    return None


def network_fault(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what a few seconds may cure (see DigestError.retryable), nothing else."""
    exc = _raised(state)
    return isinstance(exc, DigestError) and exc.retryable


# The policy of every task that fetches over the network: a refused connection, a
# timeout or a 5xx is tried again after 2 s and 10 s; a 404 or a corrupt file is not.
network_retries = task(
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=network_fault,
    cache_policy=NO_CACHE,
    persist_result=False,
)


def service_down(task: Any, task_run: Any, state: Any) -> bool:
    """Retry while a service the item needs is down (the LLM endpoint)."""
    exc = _raised(state)
    return isinstance(exc, DigestError) and exc.transient


@network_retries
def fetch_feed(feed_url: str, config_path: str | None) -> FetchResult:
    config, store = context(config_path)
    with jobs.feed_client(config) as client:
        return jobs.fetch(client, store.feeds.get(feed_url), config)


@flow(name="poll-feeds", log_prints=True, persist_result=False)
def poll_feeds(config_path: str | None = None, enqueue: bool = True) -> list[str]:
    """Poll every feed, `[feeds] concurrency` at a time; record new episodes and start
    their processing."""
    config, store = context(config_path)
    feeds = store.feeds.list()
    jobs.progress.begin("feeds", len(feeds))
    # Bounded: an unbounded pool would open a connection to every feed at once.
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(config.feeds.concurrency)
    with runner:
        futures = [
            runner.submit(fetch_feed, {"feed_url": f.url, "config_path": config_path})
            for f in feeds
        ]
        fetched = [_raised_or_result(future) for future in futures]
    now = jobs.utcnow()
    results = [
        jobs.record(store, config, f, got, now) for f, got in zip(feeds, fetched, strict=True)
    ]
    artifacts.poll_table(results)
    for result in jobs.newly_unhealthy(results, config):
        emit_event(
            event="digest.feed.unhealthy",
            resource={
                "prefect.resource.id": f"digest.feed.{result.feed_url}",
                "prefect.resource.name": result.feed_url,
            },
            payload={"error": result.error, "consecutive_failures": result.consecutive_failures},
        )
    new = [episode_id for r in results for episode_id in r.new_episode_ids]
    if enqueue:
        extractor = jobs.Extractor(store, config, prompt=prompt_override())
        for episode in jobs.work_list(store, config, extractor):
            start_processing(episode, config_path)
    artifacts.failed_episodes(jobs.failures(store, config))
    print(jobs.poll_summary(results))
    return new


def _raised_or_result(future: Any) -> FetchResult | Exception:
    try:
        return future.result()  # type: ignore[no-any-return]
    except Exception as exc:  # retries are spent: jobs.record stores it on the feed
        return exc


def start_processing(episode: Episode, config_path: str | None) -> None:
    """Deployed: hand the episode to the process-episode deployment (a gpu-pool worker
    picks it up). The idempotency key carries the attempt (the runs that claimed the
    episode so far), so later polls cannot enqueue the same attempt twice while it
    waits in the queue, and a failed, crashed or waiting attempt is followed by the
    next. Run locally: process it right here as a subflow."""
    if deployed():
        enqueue_attempt(episode.id, config_path, f"episode-{episode.id}-attempt-{episode.runs + 1}")
    else:
        process_episode(episode.id, config_path)


# Runs of one attempt that may end before claiming the episode, one after the other,
# before the poll stops enqueueing it and says so: a fault that crashes every run.
RUNS_PER_ATTEMPT = 5


def enqueue_attempt(episode_id: str, config_path: str | None, key: str) -> str | None:
    """Enqueue the attempt under `key` unless a run for it is queued or running.

    A run that ended before it claimed the episode (crashed because the server
    answered 500 while a worker submitted it, or cancelled by an operator) would hold
    the key for good, and every later poll would be deduplicated onto it while the
    episode waits. So a final run under the key hands the attempt to a next key that
    names it: the chain is the same on every poll, and each link is made once."""
    next_key = key
    for _ in range(RUNS_PER_ATTEMPT):
        run = _create_run(episode_id, config_path, next_key)
        if run.state is None or not run.state.is_final():
            return str(run.name)
        next_key = f"{key}-after-{run.id}"
    logging.getLogger("digest").error(
        "Episode %s: %d runs of the same attempt ended before claiming it (the last: "
        "%s); not enqueued again. Look at those runs' logs, then `digest retry %s`.",
        episode_id,
        RUNS_PER_ATTEMPT,
        run.name,
        episode_id,
    )
    return None


def enqueue(episode_id: str, config_path: str | None) -> str:
    """A process-episode run on the server for a worker to pick up, never deduplicated
    away (an operator's `digest retry`). The flow run's name."""
    return str(_create_run(episode_id, config_path, None).name)


def _create_run(episode_id: str, config_path: str | None, idempotency_key: str | None) -> Any:
    """The run under `idempotency_key`: a new one, or the one that already holds it."""
    return run_deployment(  # a FlowRun here: called outside an event loop
        PROCESS_DEPLOYMENT,
        parameters={"episode_id": episode_id, "config_path": config_path},
        timeout=0,
        idempotency_key=idempotency_key,
    )


@network_retries
def obtain(episode_id: str, config_path: str | None, force: bool) -> jobs.TranscriptResult | str:
    """A transcript without Whisper if there is one, else the downloaded audio's path."""
    _config, store = context(config_path)
    steps = jobs.LocalSteps(transcription(config_path), force=force)
    got = steps.obtain(store.episodes.get(episode_id))
    return got if isinstance(got, jobs.TranscriptResult) else str(got)


@task(cache_policy=NO_CACHE, persist_result=False)
def transcribe(
    episode_id: str, media: str, config_path: str | None, force: bool
) -> jobs.TranscriptResult:
    """Whisper in its worker process, holding a slot of the global `whisper` limit."""
    _config, store = context(config_path)
    episode = store.episodes.get(episode_id)
    hooks = artifacts.TranscriptionProgress(episode.title).hooks()
    steps = jobs.LocalSteps(transcription(config_path), force=force, hooks=hooks)
    return steps.transcribe(episode, Path(media))


@task(
    retries=3,
    retry_delay_seconds=[60, 180, 600],
    retry_condition_fn=service_down,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def extract(episode_id: str, config_path: str | None, force: bool) -> jobs.ExtractResult:
    config, store = context(config_path)
    per_minute = config.orchestration.llm_requests_per_minute
    extractor = jobs.Extractor(
        store,
        config,
        throttle=lambda: rate_limit("llm", occupy=1) if per_minute else None,
        prompt=prompt_override(),
    )
    result = extractor.extract(store.episodes.get(episode_id), force=force)
    if result.outcome == "waiting":  # raised, so that `service_down` can retry it
        raise ServiceUnavailable(result.error or "the LLM endpoint is unavailable")
    artifacts.insights_markdown(store, episode_id, result)
    return result


@dataclass(frozen=True)
class TaskSteps:
    """jobs.process_episode's steps, each run as a task with its own retries."""

    config_path: str | None
    force: bool
    patient: bool  # wait (retry) for an LLM endpoint that is down

    def obtain(self, episode: Episode) -> jobs.TranscriptResult | Path:
        got = obtain(episode.id, self.config_path, self.force)
        return got if isinstance(got, jobs.TranscriptResult) else Path(got)

    def transcribe(self, episode: Episode, media: Path) -> jobs.TranscriptResult:
        return transcribe(episode.id, str(media), self.config_path, self.force)

    def extract(self, episode: Episode) -> jobs.ExtractResult:
        run = extract if self.patient else extract.with_options(retries=0)
        result: jobs.ExtractResult = run(episode.id, self.config_path, self.force)
        return result


def episode_run_name() -> str:
    params = current_flow_run.parameters
    try:
        _, store = context(params.get("config_path"))
        episode = store.episodes.get(params["episode_id"])
        return f"process-episode: {episode.show_title} – {episode.title}"[:120]
    except Exception:
        return f"process-episode: {params.get('episode_id')}"


@flow(
    name="process-episode",
    flow_run_name=episode_run_name,
    log_prints=True,
    persist_result=False,
)
def process_episode(
    episode_id: str, config_path: str | None = None, force: bool = False, wait_for_llm: bool = True
) -> jobs.EpisodeOutcome:
    """Download, transcribe and extract one episode; fails (and alerts) if the episode does.

    `wait_for_llm=False` (a `digest run`): an LLM endpoint that is down is not waited for
    in the run; the episode stays transcribed and the next run extracts it."""
    _config, store = context(config_path)
    episode = store.episodes.get(episode_id)
    steps = TaskSteps(config_path, force, patient=wait_for_llm)
    work = transcription(config_path)
    outcome = jobs.process_episode(episode, steps, work.fail, work.leases)
    if outcome.outcome == "failed":
        raise RuntimeError(outcome.error)
    print(f"{episode.title}: {outcome.outcome}" + (f" ({outcome.error})" if outcome.error else ""))
    return outcome


def smtp_busy(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a send that the server turned away for now (refused, timeout, 421, 4xx),
    never one that needs a setting fixed (a refused login, an unverified certificate)."""
    exc = _raised(state)
    return isinstance(exc, jobs.DeliveryIncomplete) and exc.retryable


@task(
    retries=2,
    retry_delay_seconds=300,
    retry_condition_fn=smtp_busy,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def send(config_path: str | None, date: str | None) -> jobs.SendReport:
    """Send what is due; raise while anything is left, so that `smtp_busy` can retry it
    (a retry sends only what is missing: the ledger)."""
    config, store = context(config_path)
    report = jobs.send_digests(store, config, date=date)
    if report.to_retry:
        incomplete = jobs.DeliveryIncomplete(report)
        if incomplete.retryable:
            print(f"{incomplete}; retrying in 5 minutes if retries are left")
        raise incomplete
    return report


@flow(name="daily-digest", log_prints=True, persist_result=False)
def daily_digest(
    date: str | None = None, config_path: str | None = None, wait_for_smtp: bool = True
) -> jobs.SendReport:
    """Select, render and send. A server that is busy or unreachable is retried twice,
    5 minutes apart (`wait_for_smtp=False`, a `digest run`: left to the next run); one
    that needs a setting fixed ends the run at once, with the setting named."""
    config, store = context(config_path)
    run = send if wait_for_smtp else send.with_options(retries=0)
    try:
        report: jobs.SendReport = run(config_path, date)
    except jobs.DeliveryIncomplete as exc:
        artifacts.send_results(store, config, exc.report)
        raise
    artifacts.send_results(store, config, report)
    if report.elsewhere:
        print(f"Another run is sending ({report.elsewhere}); this one sent nothing.")
    else:
        print(f"Sent {report.count('sent')}, {report.count('rejected')} rejected.")
    return report


@flow(name="digest-pipeline", log_prints=True, persist_result=False)
def digest_pipeline(config_path: str | None = None) -> dict[str, Any]:
    """The whole job once, as `digest run` executes it: poll, process what needs it, send.

    Nothing in it waits on a service that is down: such work is left for the next run."""
    config, store = context(config_path)
    new = poll_feeds(config_path, enqueue=False)
    extractor = jobs.Extractor(store, config, prompt=prompt_override())
    outcomes = []
    work = jobs.work_list(store, config, extractor)
    jobs.progress.begin("episodes", len(work))
    jobs.progress.begin("insights")
    for episode in work:
        state = process_episode(episode.id, config_path, wait_for_llm=False, return_state=True)
        outcomes.append(state.result() if state.is_completed() else _failed(store, episode, state))
    sent = daily_digest(config_path=config_path, wait_for_smtp=False, return_state=True)
    return {
        "feeds": len(store.feeds.list()),
        "new": len(new),
        "episodes": outcomes,
        "digest": sent.result(raise_on_failure=False),
    }


def _failed(store: Any, episode: Episode, state: Any) -> jobs.EpisodeOutcome:
    """A failed process-episode run, as its episode's record tells it."""
    error = store.episodes.get(episode.id).error or state.message or "failed"
    failed = jobs.TranscriptResult(episode.id, episode.title, "failed", error=error)
    return jobs.EpisodeOutcome(episode.id, episode.title, failed)


def schedules(config: Any, has_personal_times: bool) -> dict[str, Any]:
    """Poll every `poll_interval_minutes`; send daily at send_time, or every 15 minutes
    when subscribers have their own hours (each send only reaches whoever is due)."""
    from prefect.schedules import Cron, Interval

    hour, minute = config.digest.send_time.split(":")
    digest_cron = "*/15 * * * *" if has_personal_times else f"{int(minute)} {int(hour)} * * *"
    return {
        "poll": Interval(timedelta(minutes=config.feeds.poll_interval_minutes)),
        "digest": Cron(digest_cron, timezone=config.digest.timezone),
    }
