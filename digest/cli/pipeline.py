"""The pipeline's commands: poll, process, extract, preview, send, run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.table import Table

from digest import jobs
from digest.cli.base import App, check_date, cli, console, emit_json, esc, locked, when
from digest.cli.orchestration import flows
from digest.cli.progress import ProcessProgress, RunProgress
from digest.core.addresses import normalise_email
from digest.core.config import check_mail_links
from digest.core.errors import DigestError, InvalidInput, NotFound
from digest.core.models import ALL_SHOWS, Episode
from digest.core.runlock import run_lock
from digest.core.topics import NO_TOPICS
from digest.edition import render
from digest.jobs import Extractor, ExtractResult, Transcription
from digest.transcripts.captions import render_text, render_vtt


# ---------------------------------------------------------------- pipeline
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@locked
def poll(app: App, as_json: bool) -> None:
    """Fetch every feed once and record new episodes."""
    results = jobs.poll_feeds(app.store, app.config)
    if as_json:
        return emit_json(results)
    print_poll(results)
    for r in jobs.newly_unhealthy(results, app.config):
        console.print(
            f"[red]![/] {esc(r.feed_url)} has now failed {r.consecutive_failures} polls in a "
            f"row: {esc(r.error)}"
        )


def print_poll(results: list[Any]) -> None:
    table = Table("Feed", "Outcome", "New", "Skipped", "Error")
    for r in results:
        style = {"failed": "red", "not_modified": "dim"}.get(r.outcome, "")
        table.add_row(
            esc(r.feed_url),
            f"[{style}]{r.outcome}[/]" if style else r.outcome,
            str(r.new_episodes),
            str(r.skipped_episodes),
            esc(r.error),
        )
    console.print(table)
    console.print(jobs.poll_summary(results))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--status", help="Only episodes with this status.")
@click.option("--limit", type=int, default=None, help="At most this many, newest first.")
@click.pass_obj
def episodes(app: App, as_json: bool, status: str | None, limit: int | None) -> None:
    """List known episodes, newest first."""
    rows = app.store.episodes.list(status=status, limit=limit)
    if as_json:
        return emit_json(rows)
    print_episodes(rows)


def print_episodes(rows: list[Any]) -> None:
    table = Table("ID", "Show", "Title", "Published", "Status", "Error")
    for e in rows:
        table.add_row(
            e.id, esc(e.show_title), esc(e.title), when(e.published_at), e.status, esc(e.error)
        )
    console.print(table)


@cli.command()
@click.option(
    "--episode", "episode_ids", multiple=True, metavar="ID", help="Only this episode (any status)."
)
@click.option("--limit", type=int, default=None, help="At most this many episodes.")
@click.option("--force", is_flag=True, help="Transcribe again even if a transcript exists.")
@click.pass_obj
@locked
def process(app: App, episode_ids: tuple[str, ...], limit: int | None, force: bool) -> None:
    """Transcribe pending episodes (publisher transcripts first), then extract insights."""
    extractor = Extractor(app.store, app.config)
    todo = jobs.work_list(app.store, app.config, extractor, episode_ids=episode_ids, limit=limit)
    print_outcomes(process_here(app, extractor, todo, force=force))


def process_here(
    app: App, extractor: Extractor, episodes: list[Episode], *, force: bool = False
) -> list[jobs.EpisodeOutcome]:
    """Take each episode through the pipeline in this process, with progress bars."""
    outcomes = []
    with (
        Transcription(app.store, app.config) as transcription,
        ProcessProgress(console) as progress,
    ):
        for episode in episodes:
            steps = jobs.LocalSteps(transcription, extractor, force, progress.hooks(episode.title))
            outcomes.append(
                jobs.process_episode(episode, steps, transcription.fail, transcription.leases)
            )
    return outcomes


@cli.command()
@click.argument("episode_ids", nargs=-1, metavar="[EPISODE_ID]...")
@click.option("--all-failed", is_flag=True, help="Every failed episode.")
@click.pass_obj
def retry(app: App, episode_ids: tuple[str, ...], all_failed: bool) -> None:
    """Try failed episodes again now, with their attempts back.

    With PREFECT_API_URL naming a server that has the process-episode deployment, each
    is enqueued there for a worker; otherwise each is processed here."""
    store = app.store
    if all_failed:
        episodes = store.episodes.list(status="failed")
    elif episode_ids:
        episodes = [store.episodes.get(i) for i in episode_ids]
    else:
        raise click.UsageError("name an EPISODE_ID or give --all-failed")
    if not episodes:
        console.print("No failed episodes.")
        return
    for episode in episodes:
        store.episodes.reset(episode.id, jobs.utcnow())
    config_path = str(Path(app.config_path).resolve()) if app.config_path else None
    if flows("local").deployed_server():
        for episode in episodes:
            run = flows("pipeline").enqueue(
                episode.id, config_path
            )  # no key: never deduplicated away
            console.print(f"Enqueued {esc(episode.title)} ({episode.id[:8]}) as run {run}.")
        return
    with run_lock(app.config.state_dir, "retry"):  # process_episode reads each one afresh
        outcomes = process_here(app, Extractor(store, app.config), episodes)
    print_outcomes(outcomes)


def print_outcomes(outcomes: list[jobs.EpisodeOutcome]) -> None:
    """What `digest process` and `digest run` report: one line per problem, then totals."""
    for o in outcomes:
        mark = {"failed": "[red]✗[/]", "waiting": "[yellow]…[/]", "claimed": "[blue]↷[/]"}.get(
            o.outcome
        )
        if mark:
            console.print(f"{mark} {esc(o.error)}")
        for text, reason in o.extract.dropped if o.extract else ():
            console.print(
                f"  [yellow]dropped[/] from {esc(repr(o.title))}: {esc(reason)}: {esc(text[:70])}…"
            )
    kinds = ("completed", "waiting", "failed", "claimed")
    count = {k: sum(o.outcome == k for o in outcomes) for k in kinds}
    done = [o.process for o in outcomes if o.process.outcome == "transcribed"]
    audio = sum(r.audio_seconds for r in done if r.source == "whisper") / 60
    insights = sum(len(o.extract.insights) for o in outcomes if o.extract)
    calls = sum(o.extract.calls for o in outcomes if o.extract)
    wait = f"{count['waiting']} waiting, " if count["waiting"] else ""
    wait += f"{count['claimed']} on another worker, " if count["claimed"] else ""
    console.print(
        f"Processed {len(outcomes)} episode(s): {count['completed']} completed, {wait}"
        f"{count['failed']} failed."
    )
    if outcomes:
        console.print(
            f"  {len(done)} transcribed ({audio:.1f} min of audio by Whisper), "
            f"{insights} insight(s) extracted, {calls} LLM call(s)."
        )


def print_extract(results: list[ExtractResult]) -> None:
    for r in results:
        if r.outcome == "failed":
            console.print(f"[red]✗[/] {esc(r.error)}")
        for text, reason in r.dropped:
            console.print(
                f"  [yellow]dropped[/] from {esc(repr(r.title))}: {esc(reason)}: {esc(text[:70])}…"
            )
    found = sum(len(r.insights) for r in results)
    dropped = sum(len(r.dropped) for r in results)
    calls = sum(r.calls for r in results)
    failed = sum(r.outcome == "failed" for r in results)
    console.print(
        f"Extracted {found} insight(s) from {len(results)} episode(s) ({dropped} dropped by the "
        f"grounding check, {calls} LLM call(s), {failed} failed)."
    )


@cli.command()
@click.option("--episode", "episode_ids", multiple=True, metavar="ID", help="Only this episode.")
@click.option("--force", is_flag=True, help="Extract again even if nothing changed.")
@click.pass_obj
@locked
def extract(app: App, episode_ids: tuple[str, ...], force: bool) -> None:
    """Pull grounded insights out of transcripts (cached by transcript, prompt and model)."""
    extractor = Extractor(app.store, app.config)
    todo = [app.store.episodes.get(i) for i in episode_ids] if episode_ids else extractor.pending()
    print_extract([extractor.extract(e, force=force) for e in todo])


@cli.command()
@click.option("--date", "day", metavar="YYYY-MM-DD", help="Digest date (default: today).")
@click.option(
    "--subscriber",
    "email",
    metavar="EMAIL",
    help="That reader's edition (their shows; today in their time zone).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "html", "json"]), default="text")
@click.pass_obj
def preview(app: App, day: str | None, email: str | None, fmt: str) -> None:
    """Show what the digest sent, or would send, for a date (and a reader)."""
    now = jobs.utcnow()
    selection, topics, weekly = ALL_SHOWS, NO_TOPICS, False
    if email:
        reader = app.store.subscribers.get(normalise_email(email))
        selection, topics, weekly = reader.selection, reader.topic_filter, reader.weekly
        zone = ZoneInfo(reader.timezone or app.config.digest.timezone)
        day = day or now.astimezone(zone).date().isoformat()
    day = check_date(day) if day else now.date().isoformat()
    items = jobs.edition_items(
        app.store, app.config, day, now, selection, topics=topics, weekly=weekly
    )
    if fmt == "json":
        return emit_json(render.to_json(day, items))
    if not items:
        shows = " in their shows or topics" if selection != ALL_SHOWS else ""
        console.print(f"No insights{shows} for {day} yet: run `digest run` (or `digest process`).")
        return None
    frozen = app.store.digests.get(day, selection)
    header = frozen.header if frozen else ""  # an edition not frozen yet: the standard line
    content = render.render_for_readers(
        day, items, app.config.web.base_url, weekly=weekly, header=header
    )
    text, html = content.personalise("(your unsubscribe link)", "(your subscription page)")
    click.echo(html if fmt == "html" else f"Subject: {content.subject}\n\n{text}", nl=False)


@cli.command()
@click.argument("episode_id")
@click.option("--format", "fmt", type=click.Choice(["text", "vtt", "json"]), default="text")
@click.pass_obj
def transcript(app: App, episode_id: str, fmt: str) -> None:
    """Print an episode's stored transcript."""
    episode = app.store.episodes.get(episode_id)
    stored = app.store.transcripts.get(episode.id)
    if stored is None:
        raise NotFound(
            f"episode {episode_id} has no transcript yet; "
            f"run `digest process --episode {episode_id}`"
        )
    if fmt == "json":
        data = {**stored.transcript.to_dict(), "episode_id": episode.id, "title": episode.title}
        return emit_json(data)
    render = render_vtt if fmt == "vtt" else render_text
    click.echo(render(stored.transcript), nl=False)


@cli.command()
@click.pass_obj
@locked
def run(app: App) -> None:
    """The main job: poll, transcribe, extract, send (safe to run every few minutes)."""
    if not app.store.feeds.list():
        raise InvalidInput(
            "no feeds yet: add one with `digest feeds add URL` or `digest init --sample`"
        )
    check_mail_links(app.config)  # before an hour of work, not after it
    # One code path: the same Prefect flows the scheduler runs. With PREFECT_API_URL set
    # the run shows up in that server's UI; without, Prefect runs it in ephemeral mode.
    config_path = str(Path(app.config_path).resolve()) if app.config_path else None
    watcher = RunProgress(console)
    with flows("local").local_run(verbose=app.verbose), watcher, jobs.progress.watching(watcher):
        summary = flows("pipeline").digest_pipeline(config_path=config_path)
    if not app.verbose:  # Prefect's own lines at exit ("Stopping temporary server"): -v
        logging.getLogger("prefect").setLevel(logging.WARNING)
    console.print(f"Polled {summary['feeds']} feed(s): {summary['new']} new episode(s).")
    print_outcomes(summary["episodes"])
    sent = summary["digest"]
    report = sent.report if isinstance(sent, jobs.DeliveryIncomplete) else sent
    if not isinstance(report, jobs.SendReport):
        raise DigestError(f"the daily-digest flow failed: {sent}")
    print_send(app, report)


@cli.command()
@click.option(
    "--date", "day", metavar="YYYY-MM-DD", help="Send this date's digest to all who lack it."
)
@click.option("--dry-run", is_flag=True, help="Build the messages, send nothing, record nothing.")
@click.pass_obj
@locked
def send(app: App, day: str | None, dry_run: bool) -> None:
    """Email each subscriber whose local send time has come (never twice a day)."""
    day = check_date(day) if day else None
    print_send(app, jobs.send_digests(app.store, app.config, date=day, dry_run=dry_run))


def print_send(app: App, report: jobs.SendReport) -> None:
    """The send's outcome; a stop that needs a setting fixed ends the command (exit 1)."""
    if report.elsewhere:
        console.print(
            f"[blue]↷[/] Another run is sending ({esc(report.elsewhere)}); it sends to "
            "everyone due, so this one sent nothing."
        )
        return
    for r in report.results:
        if r.outcome in ("failed", "rejected"):
            via = "" if r.channel == "email" else f" by {r.channel}"
            console.print(f"[red]✗[/] {esc(r.email)} ({r.date}{via}): {r.outcome}: {esc(r.error)}")
    console.print(
        f"Sent {report.count('sent')} message(s), {report.to_retry} to retry, "
        f"{report.count('rejected')} rejected"
        + (f", {report.count('dry-run')} built (dry run)" if report.count("dry-run") else "")
        + (
            f"; {nothing} subscriber(s) due but no insights yet"
            if (nothing := report.count("nothing-to-send"))
            else ""
        )
        + "."
    )
    if report.outbox:
        folder = report.outbox[0].parent
        console.print(f"No \\[smtp] host is set, so the digest was written to {folder}/:")
        for path in report.outbox:
            click.echo(str(path))
    if report.needs_setting:  # one line naming the setting; the messages wait, unsent
        raise DigestError(
            f"{report.stopped}; the {report.to_retry} message(s) go out on the "
            "next run once that is fixed"
        )
    if report.to_retry:
        console.print(
            f"[yellow]…[/] {report.to_retry} message(s) not delivered ({esc(report.reason)}); "
            "the next run sends them, none twice"
        )
