"""`digest serve`: every flow as a deployment with its schedule, in one process."""

from __future__ import annotations

from typing import Any

from prefect import serve

from digest.core.config import load_config

from .context import context
from .pipeline import daily_digest, digest_pipeline, poll_feeds, process_episode, schedules

NAMES = ("poll-feeds", "process-episode", "daily-digest", "digest-pipeline")


def build(config_path: str | None) -> list[Any]:
    """Distinct deployment names (each `<flow>/<flow>`), the config path as a parameter."""
    config = load_config(config_path)
    _, store = context(config_path)
    personal = any(s.timezone or s.send_time for s in store.subscribers.list(status="active"))
    when = schedules(config, personal)
    params = {"config_path": config_path}
    return [
        poll_feeds.to_deployment(name="poll-feeds", schedule=when["poll"], parameters=params),
        process_episode.to_deployment(name="process-episode", parameters=params),
        daily_digest.to_deployment(name="daily-digest", schedule=when["digest"], parameters=params),
        digest_pipeline.to_deployment(name="digest-pipeline", parameters=params),
    ]


def serve_all(config_path: str | None) -> None:
    serve(*build(config_path), pause_on_shutdown=False)
