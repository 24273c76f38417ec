"""The pipeline as Prefect flows. Read this file to see the whole job on one screen.

poll-feeds ──▶ process-episode (one run per new episode) ──▶ daily-digest
   └── every step is a task that calls one `digest.jobs` function; policy
       (retries, concurrency, rate limits) lives here on the decorators.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "digest,openai,httpx")
# Library code also logs outside flow runs (CLI commands, a serve process between runs).
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
# Ephemeral mode starts a local server; it must not phone home (nor log errors offline).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, task
from prefect.concurrency.sync import rate_limit
from prefect.deployments import run_deployment
from prefect.events import emit_event
from prefect.runtime import deployment as current_deployment
from prefect.runtime import flow_run as current_flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from digest import jobs
from digest.errors import BlockedURL, ConfigError, MediaError, ServiceUnavailable, TooLarge
from digest.models import FeedPollResult
from flows import artifacts
from flows.context import context, processor, prompt_override

# Prefect ships the `digest` logger's records to the UI; make sure INFO gets that far
# even when the host process configured the root logger for warnings only.
if logging.getLogger("digest").level == logging.NOTSET:
    logging.getLogger("digest").setLevel(logging.INFO)

PROCESS_DEPLOYMENT = "process-episode/process-episode"
PERMANENT = (BlockedURL, ConfigError, MediaError, TooLarge)  # retrying cannot help


def transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry network trouble, not a corrupt file or a bad config."""
    try:
        state.result()
    except PERMANENT:
        return False
    except Exception:
        return True
    return False


@task(retries=2, retry_delay_seconds=[5, 30], retry_condition_fn=transient)
def poll_one(feed_url: str, config_path: str | None) -> FeedPollResult:
    config, store = context(config_path)
    feed = store.feeds.get(feed_url)
    with jobs.feed_client(config) as client:
        return jobs.poll_feed(store, config, feed, client)


# Bounded: an unbounded pool would open a connection to every feed at once.
POLL_RUNNER: Any = ThreadPoolTaskRunner(max_workers=8)


@flow(name="poll-feeds", log_prints=True, task_runner=POLL_RUNNER)
def poll_feeds(config_path: str | None = None, enqueue: bool = True) -> list[str]:
    """Poll every feed at once (bounded), record new episodes, start their processing."""
    config, store = context(config_path)
    futures = poll_one.map([f.url for f in store.feeds.list()], config_path)
    results: list[FeedPollResult] = [future.result() for future in futures]
    artifacts.poll_table(results)
    for result in results:
        if (
            result.outcome == "failed"
            and result.consecutive_failures == config.feeds.alert_after_failures
        ):
            emit_event(  # exactly at the threshold: one alert per outage, not one per poll
                event="digest.feed.unhealthy",
                resource={
                    "prefect.resource.id": f"digest.feed.{result.feed_url}",
                    "prefect.resource.name": result.feed_url,
                },
                payload={
                    "error": result.error,
                    "consecutive_failures": result.consecutive_failures,
                },
            )
    new = [episode_id for r in results for episode_id in r.new_episode_ids]
    if enqueue:
        for episode_id in new:
            start_processing(episode_id, config_path)
    failed = sum(r.outcome == "failed" for r in results)
    print(f"Polled {len(results)} feed(s): {len(new)} new episode(s), {failed} failed.")
    return new


def start_processing(episode_id: str, config_path: str | None) -> None:
    """Deployed: hand the episode to the process-episode deployment (a gpu-pool worker
    picks it up); the idempotency key makes a re-poll unable to enqueue it twice.
    Run locally: process it right here as a subflow."""
    if current_deployment.id:
        run_deployment(
            PROCESS_DEPLOYMENT,
            parameters={"episode_id": episode_id, "config_path": config_path},
            timeout=0,
            idempotency_key=f"episode-{episode_id}",
        )
    else:
        process_episode(episode_id, config_path)


@task(retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=transient)
def obtain(episode_id: str, config_path: str | None, force: bool) -> dict[str, Any]:
    """A transcript without Whisper if there is one, else the downloaded audio."""
    _config, store = context(config_path)
    episode = store.episodes.get(episode_id)
    done = processor(config_path).ready(episode, force=force)
    if done is not None:
        return {"done": done}
    return {"media": str(processor(config_path).download(episode))}


@task(retries=1, retry_delay_seconds=30, retry_condition_fn=transient)
def transcribe(
    episode_id: str, media: str, config_path: str | None, force: bool
) -> jobs.ProcessResult:
    """Whisper in its worker process, holding a slot of the global `whisper` limit."""
    from pathlib import Path

    _config, store = context(config_path)
    episode = store.episodes.get(episode_id)
    progress = artifacts.TranscriptionProgress(episode.title)
    return processor(config_path).transcribe_media(
        episode, Path(media), force=force, hooks=progress.hooks()
    )


# An LLM endpoint that is down is retried for about a quarter of an hour, then the
# episode waits (still transcribed, no attempt used) for the next run.
@task(retries=3, retry_delay_seconds=[60, 180, 600], retry_condition_fn=transient)
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
    if result.outcome == "waiting":
        raise ServiceUnavailable(result.error or "the LLM endpoint is unavailable")
    artifacts.insights_markdown(store, episode_id, result)
    return result


def episode_run_name() -> str:
    params = current_flow_run.parameters
    try:
        _, store = context(params.get("config_path"))
        episode = store.episodes.get(params["episode_id"])
        return f"process-episode: {episode.show_title} – {episode.title}"[:120]
    except Exception:
        return f"process-episode: {params.get('episode_id')}"


@flow(name="process-episode", flow_run_name=episode_run_name, log_prints=True)
def process_episode(
    episode_id: str, config_path: str | None = None, force: bool = False, wait_for_llm: bool = True
) -> dict[str, Any]:
    """Download, transcribe and extract one episode; fails (and alerts) if the episode does.

    `wait_for_llm=False` (a `digest run`): an LLM endpoint that is down is not waited for
    in the run; the episode stays transcribed and the next run extracts it."""
    _config, store = context(config_path)
    episode = store.episodes.get(episode_id)
    try:
        got = obtain(episode_id, config_path, force)
        result = (
            got["done"]
            if "done" in got
            else transcribe(episode_id, got["media"], config_path, force)
        )
    except Exception as exc:
        failed = processor(config_path).fail(episode, exc)
        raise RuntimeError(failed.error) from exc
    try:
        extracted = (extract if wait_for_llm else extract.with_options(retries=0))(
            episode_id, config_path, force
        )
    except ServiceUnavailable as exc:
        if wait_for_llm:
            raise
        print(f"{episode.title}: waiting for the LLM endpoint ({exc})")
        return {"process": result, "waiting": str(exc)}
    if extracted.outcome == "failed":
        raise RuntimeError(extracted.error)
    print(
        f"{episode.title}: {result.outcome} ({result.source}), {len(extracted.insights)} insight(s)"
    )
    return {"process": result, "extract": extracted}


@task
def send(config_path: str | None, date: str | None) -> jobs.SendReport:
    config, store = context(config_path)
    return jobs.send_digests(store, config, date=date)


@flow(name="daily-digest", log_prints=True, retries=2, retry_delay_seconds=300)
def daily_digest(date: str | None = None, config_path: str | None = None) -> jobs.SendReport:
    """Select, render and send; a retry after a partial send sends only what is missing."""
    config, store = context(config_path)
    report = send(config_path, date)
    artifacts.send_results(store, config, report)
    retry = report.count("failed") + report.count("not-attempted")
    print(f"Sent {report.count('sent')}, {retry} to retry, {report.count('rejected')} rejected.")
    if retry:
        raise RuntimeError(f"{retry} message(s) not delivered yet; the flow retry will send them")
    return report


@flow(name="digest-pipeline", log_prints=True)
def digest_pipeline(config_path: str | None = None) -> dict[str, Any]:
    """The whole job once, as `digest run` executes it: poll, process what is new, send."""
    config, store = context(config_path)
    new = poll_feeds(config_path, enqueue=False)
    todo = store.episodes.processable(max_attempts=config.transcription.max_attempts)
    extractor = jobs.Extractor(store, config, prompt=prompt_override())
    todo += [e for e in extractor.pending() if e.id not in {t.id for t in todo}]
    outcomes = {}
    for episode in todo:
        state = process_episode(episode.id, config_path, wait_for_llm=False, return_state=True)
        outcomes[episode.id] = _outcome(state)
    report = daily_digest(config_path=config_path, return_state=True)
    return {
        "feeds": len(store.feeds.list()),
        "new": len(new),
        "episodes": outcomes,
        "digest": report.result(raise_on_failure=False),
    }


def _outcome(state: Any) -> str:
    """completed, waiting (for the LLM endpoint) or failed: what `digest run` reports."""
    if not state.is_completed():
        return "failed"
    return "waiting" if "waiting" in state.result() else "completed"


HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


def local_run_settings() -> Any:
    """Settings for `digest run` in a terminal or cron job: no flow-run heartbeats.

    Heartbeats let a server notice a crashed run through an automation; a local run's
    crash is seen by whoever started it, and each flow run pays up to a second at its
    end joining Prefect's heartbeat thread (docs/benchmarks.md). Set either heartbeat
    variable to keep them."""
    from contextlib import nullcontext

    from prefect.settings import temporary_settings

    if any(os.environ.get(name) for name in HEARTBEAT_VARIABLES):
        return nullcontext()
    return temporary_settings(updates={"flows.heartbeat_frequency": None})


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
