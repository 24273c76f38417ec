"""Commands that set things up: init, feeds, subscribers."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from digest import jobs
from digest.cli.base import SAMPLE_READER, App, cli, console, emit_json, esc, when
from digest.core.addresses import check_send_time, check_subscriber_timezone, normalise_email
from digest.core.errors import InvalidInput, NotFound
from digest.core.models import CADENCES, WEEKDAYS, Cadence, Subscriber, to_json
from digest.core.topics import parse_topics
from digest.delivery.outbox import forget_outbox
from digest.feeds.opml import parse_opml, render_opml
from digest.feeds.sample import install_sample
from digest.store.subscriber_repo import Preferences


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
        if not store.subscribers.list():
            # Due at 00:00 in UTC, so the first run's digest is written at once.
            store.subscribers.add(SAMPLE_READER, jobs.utcnow(), timezone="UTC", send_time="00:00")
            console.print(f"Added the sample subscriber {SAMPLE_READER}")
    prepare_prefect()


def prepare_prefect() -> None:
    """Migrate Prefect's local database now, so the first `digest run` starts quickly."""
    from digest.cli.orchestration import flows

    try:
        url = flows("local").prepare()
    except Exception as exc:  # the first run migrates it anyway; say so and go on
        console.print(
            f"[yellow]Prefect's local database was not prepared ({exc}); "
            "the first `digest run` will prepare it.[/]"
        )
        return
    if url:
        console.print(f"Prefect database (for runs without a server): {url}")


# ---------------------------------------------------------------- feeds
@cli.group()
def feeds() -> None:
    """Manage podcast feeds."""


def feed_url(value: str, allow_local_files: bool) -> str:
    """http(s) URLs as given; a local file (path or file://) as a file:// URL, only when
    `[feeds] allow_local_files` says so: a feed list from elsewhere must not make the
    pipeline read this machine's files."""
    if value.startswith(("http://", "https://")):
        return value
    if "://" in value and not value.startswith("file://"):
        raise InvalidInput(f"{value}: a feed URL must start with http:// or https://")
    if not allow_local_files:
        raise InvalidInput(
            f"{value}: local files are not accepted as feeds; set [feeds] allow_local_files = "
            "true to allow them"
        )
    path = Path(value[7:] if value.startswith("file://") else value)
    if not path.is_file():
        raise InvalidInput(f"{value}: not an http(s) URL and no such file")
    return path.resolve().as_uri()


@feeds.command("add")
@click.argument("url")
@click.pass_obj
def feeds_add(app: App, url: str) -> None:
    """Subscribe to a feed (its first poll skips the back catalogue)."""
    feed = app.store.feeds.add(feed_url(url, app.config.feeds.allow_local_files), jobs.utcnow())
    console.print(f"Added {feed.url}; run `digest poll` to fetch it.")


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def feeds_list(app: App, as_json: bool) -> None:
    """List feeds with their health."""
    rows = app.store.feeds.list()
    if as_json:
        return emit_json(rows)
    table = Table("URL", "Title", "Last polled", "Failures", "Last error", "Warnings")
    for f in rows:
        table.add_row(
            esc(f.url), esc(f.title), when(f.last_polled_at), str(f.consecutive_failures),
            esc(f.last_error), esc("; ".join(f.warnings)),
        )  # fmt: skip
    console.print(table)


@feeds.command("remove")
@click.argument("url")
@click.pass_obj
def feeds_remove(app: App, url: str) -> None:
    """Unsubscribe from a feed and forget its episodes."""
    candidates = [url] if "://" in url else [url, Path(url).resolve().as_uri()]
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
    allow = app.config.feeds.allow_local_files
    try:  # all or nothing: one refused entry stops the import before anything is added
        entries = [
            (feed_url(url, allow), title) for url, title in parse_opml(file.read_bytes(), str(file))
        ]
    except InvalidInput as exc:
        raise InvalidInput(f"{file}: nothing imported: {exc}") from None
    known = {f.url for f in app.store.feeds.list()}
    added = 0
    for url, title in entries:
        if url not in known:
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


TOPICS = click.option(
    "--topics",
    metavar="TEXT",
    help='Topics to follow across shows: words, "quoted phrases", -word to keep out '
    '(e.g. \'"battery storage" grid -crypto\'); their insights rank first. "" clears them.',
)
ONLY_TOPICS = click.option(
    "--only-topics/--any-topics",
    default=None,
    help="Only insights on the topics (a day without any sends nothing) / topics first.",
)
CADENCE = click.option(
    "--cadence", type=click.Choice(CADENCES), help="daily (default), or weekly on --weekday."
)
WEEKDAY = click.option(
    "--weekday",
    type=click.Choice(WEEKDAYS, case_sensitive=False),
    help="A weekly reader's day (default: monday).",
)


@subscribers.command("add")
@click.argument("email")
@click.option("--timezone", "tz", help="IANA timezone, e.g. Europe/Berlin (default: [digest]).")
@click.option("--send-time", help="Local send time HH:MM (default: [digest] send_time).")
@click.option(
    "--show",
    "shows",
    multiple=True,
    metavar="URL",
    help="Only this show's insights (a feed URL from `digest feeds list`; repeat for more). "
    "Default: every show, including ones added later.",
)
@TOPICS
@ONLY_TOPICS
@CADENCE
@WEEKDAY
@click.pass_obj
def subscribers_add(
    app: App,
    email: str,
    tz: str | None,
    send_time: str | None,
    shows: tuple[str, ...],
    topics: str | None,
    only_topics: bool | None,
    cadence: Cadence | None,
    weekday: str | None,
) -> None:
    """Add an active subscriber (syntax is checked; nothing is sent, no confirmation)."""
    address = normalise_email(email)
    sub = app.store.subscribers.add(
        address,
        jobs.utcnow(),
        timezone=check_subscriber_timezone(tz) if tz else None,
        send_time=check_send_time(send_time) if send_time else None,
        shows=_feed_ids(app, shows),
        topics=parse_topics(topics, bool(only_topics)),
        cadence=cadence or "daily",
        weekday=WEEKDAYS.index(weekday.lower()) if weekday else 0,
    )
    console.print(f"Subscribed {sub.email}")


@subscribers.command("set")
@click.argument("email")
@click.option("--timezone", "tz", help="IANA timezone, e.g. Europe/Berlin.")
@click.option("--send-time", help="Local send time HH:MM.")
@click.option("--show", "shows", multiple=True, metavar="URL", help="Only these shows.")
@click.option("--all-shows", is_flag=True, help="Every show, including ones added later.")
@TOPICS
@ONLY_TOPICS
@CADENCE
@WEEKDAY
@click.pass_obj
def subscribers_set(
    app: App,
    email: str,
    tz: str | None,
    send_time: str | None,
    shows: tuple[str, ...],
    all_shows: bool,
    topics: str | None,
    only_topics: bool | None,
    cadence: Cadence | None,
    weekday: str | None,
) -> None:
    """Change a subscriber's preferences; what is not given stays as it is."""
    reader = app.store.subscribers.get(normalise_email(email))
    if shows and all_shows:
        raise InvalidInput("--show and --all-shows: choose one")
    before = reader.topic_filter
    prefs = Preferences(
        None if all_shows else (_feed_ids(app, shows) if shows else reader.shows),
        check_subscriber_timezone(tz) if tz else reader.timezone,
        check_send_time(send_time) if send_time else reader.send_time,
        parse_topics(
            before.text if topics is None else topics,
            before.only if only_topics is None else only_topics,
        ),
        cadence or reader.cadence,
        WEEKDAYS.index(weekday.lower()) if weekday else reader.weekday,
    )
    app.store.subscribers.set_preferences(reader.id, prefs)
    console.print(f"Updated {reader.email}")


def _feed_ids(app: App, shows: tuple[str, ...]) -> tuple[int, ...] | None:
    try:
        return jobs.shows_from_urls(shows, app.store.feeds.list())
    except InvalidInput as exc:
        raise InvalidInput(f"{exc}; see `digest feeds list`") from exc


@subscribers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def subscribers_list(app: App, as_json: bool) -> None:
    """List subscribers: status (pending, active, paused, bounced, unsubscribed) and shows."""
    rows = app.store.subscribers.list()
    urls = {f.id: f.url for f in app.store.feeds.list()}

    def shows(s: Subscriber) -> list[str]:  # feed URLs; empty: every show
        return [urls[i] for i in s.shows or () if i in urls]

    if as_json:
        return emit_json(
            [
                {
                    **{k: v for k, v in to_json(s).items() if k != "unsubscribe_token"},
                    "shows": shows(s),
                }
                for s in rows
            ]
        )
    cfg = app.config.digest
    table = Table("Email", "Timezone", "Send time", "Cadence", "Status", "Shows", "Topics", "Since")
    for s in rows:
        table.add_row(
            esc(s.email),
            s.timezone or cfg.timezone,
            s.send_time or cfg.send_time,
            f"weekly, {WEEKDAYS[s.weekday]}" if s.weekly else "daily",
            s.status,
            esc("\n".join(shows(s))) or "all",
            esc(s.topics + (" (only)" if s.topics_only else "")),
            when(s.created_at),
        )
    console.print(table)


# A token may start with "-" (older ones: about one in 64), which would read as an option.
@subscribers.command("unsubscribe", context_settings={"ignore_unknown_options": True})
@click.argument("token")
@click.pass_obj
def subscribers_unsubscribe(app: App, token: str) -> None:
    """Unsubscribe by the token from a List-Unsubscribe mailto request."""
    subscriber = app.store.subscribers.by_token(token.strip())
    if subscriber is None:
        raise NotFound("no subscriber has that unsubscribe token")
    app.store.subscribers.set_status(subscriber.id, "unsubscribed")
    console.print(f"Unsubscribed {subscriber.email}")


@subscribers.command("remove")
@click.argument("email")
@click.pass_obj
def subscribers_remove(app: App, email: str) -> None:
    """Delete a subscriber and everything that names them: deliveries, sign-ups, the
    outbox's messages. Their links stop working."""
    removed = app.store.subscribers.remove(email.strip())
    files = forget_outbox(app.config.state_dir / "outbox", removed.email)
    note = f" and {files} outbox message(s)" if files else ""
    console.print(f"Removed {removed.email}, their deliveries and sign-ups{note}")
