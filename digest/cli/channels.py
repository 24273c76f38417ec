"""`digest channels`: where each reader's editions go besides their inbox."""

from __future__ import annotations

import click
from rich.table import Table

from digest import jobs
from digest.cli.base import App, cli, console, emit_json, esc
from digest.core.addresses import normalise_email
from digest.core.errors import InvalidInput, NotFound
from digest.core.models import Endpoint
from digest.delivery.channels.feed import feed_url
from digest.delivery.channels.webhook import FORMATS, check_webhook_url


@cli.group()
def channels() -> None:
    """Readers' channels: email (everyone's until changed), webhooks, a private feed."""


@channels.command("add")
@click.argument("email")
@click.argument("kind", type=click.Choice(["email", "webhook", "feed"]))
@click.argument("url", required=False, default="")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="json",
    help="webhook: signed JSON (default), or a Slack/Mattermost incoming-webhook message.",
)  # fmt: skip
@click.pass_obj
def channels_add(app: App, email: str, kind: str, url: str, fmt: str) -> None:
    """Send EMAIL's editions to a webhook URL too, or publish them in a private feed (or
    email again, after removing it). Prints the webhook's signing secret (give it to
    the receiver) or the feed's private URL (give it to the reader)."""
    reader = app.store.subscribers.get(normalise_email(email))
    if kind == "webhook":
        if not url:
            raise InvalidInput("a webhook needs its URL: digest channels add EMAIL webhook URL")
        url = check_webhook_url(url, app.config)
    elif url:
        raise InvalidInput(f"{kind} takes no URL")
    endpoint = app.store.endpoints.add(
        reader.id, kind, jobs.utcnow(), target=url, format=fmt if kind == "webhook" else ""
    )
    console.print(f"Added {endpoint.key} for {esc(reader.email)}")
    if kind == "feed":
        console.print(f"Private feed: {feed_url(app.config.web.base_url, endpoint)}")
    elif endpoint.secret:
        console.print(f"Signing secret (X-Digest-Signature): {endpoint.secret}")


@channels.command("list")
@click.argument("email", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def channels_list(app: App, email: str | None, as_json: bool) -> None:
    """Each reader's channels (all readers, or EMAIL's)."""
    readers = (
        [app.store.subscribers.get(normalise_email(email))]
        if email
        else app.store.subscribers.list()
    )
    found = app.store.endpoints.of(r.id for r in readers)
    rows = [(r, e) for r in readers for e in found[r.id]]
    if as_json:
        return emit_json([_json(r.email, e) for r, e in rows])
    table = Table("Email", "Channel", "Target", "Format", "State")
    for reader, e in rows:
        state = f"disabled: {e.disabled}" if e.disabled else "active"
        table.add_row(esc(reader.email), e.key, esc(e.target), e.format, esc(state))
    console.print(table)
    return None


@channels.command("remove")
@click.argument("email")
@click.argument("channel", metavar="CHANNEL")
@click.pass_obj
def channels_remove(app: App, email: str, channel: str) -> None:
    """Stop sending EMAIL's editions to CHANNEL ("email" or "webhook:ID" from `list`)."""
    reader = app.store.subscribers.get(normalise_email(email))
    mine = app.store.endpoints.of([reader.id])[reader.id]
    endpoint = next((e for e in mine if e.key == channel), None)
    if endpoint is None:
        known = ", ".join(e.key for e in mine)
        raise NotFound(f"{reader.email} has no channel {channel!r} (has: {known})")
    app.store.endpoints.remove(reader.id, endpoint)
    console.print(f"Removed {channel} for {esc(reader.email)}")


def _json(email: str, e: Endpoint) -> dict[str, object]:
    return {
        "email": email,
        "channel": e.key,
        "kind": e.kind,
        "target": e.target,
        "format": e.format,
        "disabled": e.disabled,
    }
