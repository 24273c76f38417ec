"""What operators see on each run in the Prefect UI: tables, markdown and progress."""

from __future__ import annotations

import time
from typing import Any

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from digest import jobs
from digest.core.config import Config
from digest.core.models import FeedPollResult
from digest.core.templating import timestamp
from digest.edition import render
from digest.jobs import Hooks
from digest.store import Store


def poll_table(results: list[FeedPollResult]) -> None:
    rows = [
        {
            "feed": r.feed_url,
            "outcome": r.outcome,
            "new": r.new_episodes,
            "skipped": r.skipped_episodes,
            "error": r.error or "",
        }
        for r in results
    ]
    create_table_artifact(
        table=rows, key="new-episodes", description="Feeds polled and episodes found"
    )


def insights_markdown(store: Store, episode_id: str, result: jobs.ExtractResult) -> None:
    episode = store.episodes.get(episode_id)
    lines = [f"# {episode.show_title}: {episode.title}", ""]
    for insight in store.insights.for_episode(episode_id):
        at = timestamp(insight.start_seconds) if insight.start_seconds is not None else "?"
        lines += [
            f"**[{at}] importance {insight.importance}** {insight.text}",
            "",
            f"> {insight.quote}",
            "",
        ]
    if result.dropped:
        lines += ["## Dropped by the grounding check", ""]
        lines += [f"- {reason}: {text[:120]}" for text, reason in result.dropped]
    create_markdown_artifact(
        markdown="\n".join(lines),
        key=f"insights-{episode_id.lower()}",
        description="Grounded insights",
    )


def failed_episodes(failures: list[jobs.Failure]) -> None:
    """What failed, why, and when it is tried again: the operator's to-do list."""
    rows: list[dict[str, Any]] = [
        {
            "episode": f.episode_id,
            "show": f.show,
            "title": f.title,
            "attempts": f.attempts,
            "next retry": f.next_retry,
            "error": f.error,
        }
        for f in failures
    ]
    create_table_artifact(
        table=rows or [{"episode": "none failed"}],
        key="failed-episodes",
        description="Failed episodes and their next retry",
    )


def send_results(store: Store, config: Config, report: jobs.SendReport) -> None:
    dates = sorted({r.date for r in report.results})
    for day in dates:
        items = jobs.edition_items(store, config, day)
        create_markdown_artifact(
            markdown=f"```\n{render.render_email(day, items).text}\n```",
            key="digest-preview",
            description=f"The digest for {day} (the all-shows edition)",
        )
    titles = {f.id: f.title or f.url for f in store.feeds.list()}
    shows = {  # which edition each reader got: their shows
        s.email: ", ".join(titles.get(i, str(i)) for i in s.shows) if s.shows else "all"
        for s in store.subscribers.list()
    }
    rows: list[dict[str, Any]] = [
        {
            "email": r.email,
            "date": r.date,
            "shows": shows.get(r.email, ""),
            "channel": r.channel,
            "outcome": r.outcome,
            "error": r.error or "",
        }
        for r in report.results
    ]
    create_table_artifact(
        table=rows or [{"outcome": "nobody due"}], key="send-results", description="Deliveries"
    )


class TranscriptionProgress:
    """A progress artifact updated at most every few seconds while Whisper runs."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.artifact_id: Any = None
        self.last = 0.0

    def hooks(self) -> Hooks:
        def transcribing(done: float, total: float) -> None:
            percent = min(100.0, 100.0 * done / total) if total else 0.0
            if self.artifact_id is None:
                self.artifact_id = create_progress_artifact(
                    percent, description=f"Transcribing {self.title}"
                )
            elif time.monotonic() - self.last > 3 or percent >= 100:
                update_progress_artifact(self.artifact_id, percent)
            else:
                return
            self.last = time.monotonic()  # only when the UI was told, or it would never be

        return Hooks(transcribing=transcribing)
