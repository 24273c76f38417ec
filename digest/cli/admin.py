"""Operating commands: status, the web endpoint, model tools."""

from __future__ import annotations

from pathlib import Path

import click

from digest import jobs
from digest.cli.base import App, cli, console, emit_json, esc
from digest.cli.orchestration import flows
from digest.core.addresses import normalise_email
from digest.core.config import check_mail_links
from digest.core.errors import InvalidInput
from digest.transcripts.convert import convert_ct2
from digest.transcripts.packaged import ct2_folder


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(app: App, as_json: bool) -> None:
    """Health at a glance: feeds failing, episodes by stage, subscribers."""
    summary = jobs.status_report(app.store, app.config)
    if as_json:
        return emit_json(summary)
    feeds_health = summary["feeds"]
    console.print(f"Feeds: {feeds_health['total']} ({feeds_health['failing']} failing)")
    for f in summary["failing_feeds"]:
        console.print(
            f"  [red]✗[/] {esc(f['url'])}: {f['consecutive_failures']} failed poll(s): "
            f"{esc(f['last_error'])}"
        )
    episodes_line = ", ".join(f"{n} {s}" for s, n in sorted(summary["episodes"].items())) or "none"
    console.print(f"Episodes: {episodes_line}")
    for e in jobs.failures(app.store, app.config):
        console.print(
            f"  [red]✗[/] {e.episode_id[:8]} {esc(e.title)}: {esc(e.error)} "
            f"({e.attempts} attempt(s); next retry: {e.next_retry})"
        )
    subs_line = ", ".join(f"{n} {s}" for s, n in sorted(summary["subscribers"].items())) or "none"
    console.print(f"Subscribers: {subs_line}")
    if summary["pending_signups"]:
        console.print(f"  {summary['pending_signups']} sign-up(s) waiting for confirmation")
    for kind, outcomes in sorted(summary["deliveries"].items()):
        line = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items()))
        console.print(f"Deliveries by {kind} (7 days): {line}")
    for day in summary["llm_usage"]:
        cost = "unknown cost" if day["cost_usd"] is None else f"~${day['cost_usd']:.4f}"
        console.print(
            f"LLM {day['day']} {day['stage']} {day['model']}: {day['calls']} call(s), "
            f"{day['prompt_tokens']:,} in / {day['completion_tokens']:,} out tokens, {cost}"
        )


@cli.command()
@click.option("--host", help="Listen address (default: [web] host).")
@click.option("--port", type=int, help="Port (default: [web] port; 0: any free port).")
@click.pass_obj
def web(app: App, host: str | None, port: int | None) -> None:
    """Serve sign-up, subscription pages, one-click unsubscribe and the public archive."""
    import uvicorn

    from digest.web import create_app
    from digest.web.server import server_config

    config = app.config
    check_mail_links(config)  # its confirmation emails carry links too
    settings = config.web
    host, port = host or settings.host, settings.port if port is None else port
    server = uvicorn.Server(
        server_config(create_app(app.store, config), settings, host=host, port=port)
    )
    sock = server.config.bind_socket()  # bound here, so the line below names the real port
    bound = sock.getsockname()[1]  # (--port 0: one the system chose)
    console.print(f"Serving on http://{host}:{bound} (Ctrl-C stops)")
    console.print(f"Pages and emails link to {esc(settings.base_url)} (\\[web] base_url)")
    server.run(sockets=[sock])


# ---------------------------------------------------------------- models
@cli.group()
def models() -> None:
    """Whisper model tools."""


@models.command("convert-ct2")
@click.argument("source")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def models_convert_ct2(app: App, source: str, out: Path) -> None:
    """Turn a CTranslate2 Whisper model (a folder, or tiny.en / base from their PyPI
    packages) into an openai-whisper .pt file."""
    folder = Path(source)
    if not folder.is_dir():
        folder = ct2_folder(source, app.config.state_dir) or folder
    dims = convert_ct2(folder, out)
    console.print(
        f"Wrote {out}: {dims['n_audio_layer']}+{dims['n_text_layer']} layers, "
        f"{dims['n_audio_state']} wide, vocabulary {dims['n_vocab']}. Use it with "
        f'\\[transcription] backend = "openai-whisper", model = "{esc(str(out))}".'
    )


@cli.group()
def smtp() -> None:
    """Check the mail server settings."""


@smtp.command("check")
@click.option("--to", "to", metavar="ADDRESS", help="Also send a short test message here.")
@click.pass_obj
def smtp_check(app: App, to: str | None) -> None:
    """Connect, negotiate TLS, log in (and send a test message), printing each step."""
    from digest.delivery.smtp import check_server

    config = app.config
    if not config.smtp.host:
        raise InvalidInput(
            "no [smtp] host is set, so digests are written to the outbox folder; set [smtp] "
            "host, port, security and username (and $DIGEST_SMTP_PASSWORD) to send them"
        )
    check_mail_links(config)
    address = normalise_email(to) if to else None

    def step(text: str) -> None:
        console.print(f"[green]✓[/] {esc(text)}")

    check_server(
        config.smtp,
        config.secrets.smtp_password,
        sender=config.digest.sender,
        to=address,
        step=step,
    )
    console.print("The SMTP settings work.")


@cli.command("config")
def config_reference() -> None:
    """Print every setting with its default (a starting point for digest.toml)."""
    from digest.core.config_reference import reference

    click.echo(reference(), nl=False)


@cli.command()
@click.pass_obj
def serve(app: App) -> None:
    """Serve every deployment with its schedule in this process (Ctrl-C stops)."""
    _ = app.store  # migrate before the first scheduled run; fail fast on a bad database
    with flows("local").prefect_api():
        flows("deployments").serve_all(
            str(Path(app.config_path).resolve()) if app.config_path else None
        )
