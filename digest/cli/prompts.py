"""`digest prompts`: list, try and evaluate extraction prompts before they ship."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from digest.cli.base import App, cli, console, esc
from digest.core.errors import ConfigError, InvalidInput
from digest.core.templating import timestamp
from digest.insights.backends import OFFLINE, active_prompt
from digest.insights.prompts import list_prompts
from digest.jobs.workbench import (
    GATES,
    Trial,
    eval_set,
    from_file,
    from_store,
    measures,
    run_prompt,
    worse_on_gates,
)


@cli.group()
def prompts() -> None:
    """Try, compare and switch extraction prompts (templates/prompts/*.j2)."""


@prompts.command("list")
@click.pass_obj
def prompts_list(app: App) -> None:
    """The prompts, and which one is active ([extraction] prompt)."""
    active = active_prompt(app.config)
    table = Table("", "Prompt", "Description", "Model", "Temperature", "Max/window")
    for prompt in list_prompts(app.config.extraction.prompts_dir):
        if isinstance(prompt, ConfigError):
            table.add_row("!", "[red]invalid[/]", esc(str(prompt)), "", "", "")
            continue
        m = prompt.meta
        table.add_row(
            "*" if prompt.name == active else "",
            esc(prompt.name),
            esc(m.description),
            m.model or f"{app.config.extraction.model} (config)",
            "" if m.temperature is None else f"{m.temperature:g}",
            "" if m.max_insights is None else str(m.max_insights),
        )
    table.add_row(
        "*" if active == OFFLINE else "",
        OFFLINE,
        "offline, no LLM: verbatim passages",
        "",
        "",
        "",
    )
    console.print(table)
    console.print(f"Active: {active}")


def _show(trials: list[Trial]) -> None:
    for trial in trials:
        head = f"[bold]{trial.prompt}[/] ({trial.model}, version {trial.version})"
        if trial.outcome is None:
            console.print(f"{head}: [red]failed[/]: {esc(trial.error)}")
            continue
        console.print(f"{head}: {len(trial.outcome.insights)} insight(s) in {trial.seconds:.1f} s")
        for i in trial.outcome.insights:
            at = timestamp(i.start_seconds) if i.start_seconds is not None else "--:--:--"
            console.print(f"  [{at}] ({i.importance}) {esc(i.text)}")
            console.print(f"      [dim]> {esc(i.quote)}[/]")
        for text, reason in trial.outcome.dropped:
            console.print(f"  [yellow]dropped[/]: {esc(reason)}: {esc(text[:90])}")


@prompts.command("try")
@click.argument("prompt")
@click.option("--episode", "episodes", multiple=True, metavar="ID", help="A stored transcript.")
@click.option(
    "--transcript",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A transcript file (text, VTT, SRT, JSON).",
)
@click.option("--against", help="Compare with this prompt (default: the active one).")
@click.pass_obj
def prompts_try(
    app: App, prompt: str, episodes: tuple[str, ...], files: tuple[Path, ...], against: str | None
) -> None:
    """Run PROMPT beside the active prompt on transcripts; the digest is not touched."""
    samples = [from_store(app.store, e) for e in episodes] + [from_file(f) for f in files]
    if not samples:
        raise InvalidInput("give at least one --episode ID or --transcript FILE")
    other = against or active_prompt(app.config)
    names = [prompt] if other == prompt else [prompt, other]
    results = {name: run_prompt(app.config, name, samples) for name in names}
    for n, sample in enumerate(samples):
        console.rule(sample.label)
        _show([results[name][n] for name in names])


@prompts.command("eval")
@click.argument("prompt")
@click.option("--against", help="The prompt to beat (default: the active one).")
@click.option(
    "--set",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of transcripts (default: the shipped evaluation set).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def prompts_eval(
    app: App, prompt: str, against: str | None, folder: Path | None, as_json: bool
) -> None:
    """Score PROMPT against the active prompt; exit 1 if it is worse on grounding or format."""
    samples = eval_set(folder)
    other = against or active_prompt(app.config)
    candidate = measures(app.config, run_prompt(app.config, prompt, samples))
    active = measures(app.config, run_prompt(app.config, other, samples))
    worse = worse_on_gates(candidate, active)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "candidate": prompt,
                    "against": other,
                    "episodes": len(samples),
                    "measures": {
                        m: {"candidate": candidate[m], "against": active[m]} for m in candidate
                    },
                    "worse_on": worse,
                    "passed": not worse,
                },
                indent=2,
            )
        )
    else:
        table = Table("Measure", prompt, other, title=f"{len(samples)} transcripts")
        for measure, value in candidate.items():
            flag = " [red]✗[/]" if measure in worse else ""
            table.add_row(measure, f"{value:.3g}{flag}", f"{active[measure]:.3g}")
        console.print(table)
        console.print(
            f"[red]{prompt} is worse than {other} on: {', '.join(worse)}[/]"
            if worse
            else f"{prompt} is at least as good as {other} on {' and '.join(GATES)}."
        )
    if worse:
        sys.exit(1)
