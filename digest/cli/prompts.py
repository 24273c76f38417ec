"""`digest prompts`: list, try and evaluate extraction prompts before they ship."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from digest.cli.base import App, cli, console, esc
from digest.core.errors import ConfigError, InvalidInput
from digest.core.meaning import best_available
from digest.core.templating import timestamp
from digest.insights.backends import OFFLINE, active_prompt, promptless
from digest.insights.prompts import list_prompts
from digest.insights.references import SetScore, recall_noise
from digest.jobs.workbench import (
    GATES,
    Trial,
    eval_set,
    from_file,
    from_store,
    measures,
    reference_scores,
    run_prompt,
    with_references,
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
    help="Folder of transcripts, each with its NAME.references.md (default: the shipped set).",
)
@click.option(
    "--similarity", type=click.Choice(["auto", "minilm", "lexical"]), default="auto",
    help="How candidates are matched to references: by meaning (the meaning extra) or words.",
)  # fmt: skip
@click.option(
    "--editor", help="The day's editor pass for PROMPT (templates/prompts/day/NAME.j2; "
    "default: [extraction] editor_prompt; LLM prompts only).",
)  # fmt: skip
@click.option("--against-editor", help="The editor pass for the prompt to beat.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def prompts_eval(
    app: App,
    prompt: str,
    against: str | None,
    folder: Path | None,
    similarity: str,
    editor: str | None,
    against_editor: str | None,
    as_json: bool,
) -> None:
    """Score PROMPT against the active prompt; exit 1 if it is worse on grounding, format,
    or recall of the editors' references beyond the set's noise."""
    chosen = eval_set(folder)
    samples = chosen.samples
    measure = best_available(similarity)
    other = against or active_prompt(app.config)
    names = dict.fromkeys([prompt, other])  # one run when a prompt is compared with itself
    trials = {name: run_prompt(app.config, name, samples) for name in names}
    # Each side's editor pass; `prompts eval insights --editor sharper` compares two
    # editor passes over the same extraction.
    mine_editor, their_editor = _editor(app, prompt, editor), _editor(app, other, against_editor)
    day_refs = chosen.day_references
    mine = reference_scores(app.config, trials[prompt], day_refs, measure, mine_editor)
    theirs = reference_scores(app.config, trials[other], day_refs, measure, their_editor)
    candidate = with_references(measures(app.config, trials[prompt]), mine)
    active = with_references(measures(app.config, trials[other]), theirs)
    noise = recall_noise(mine, theirs)
    day_noise = 1 / max(len(day_refs), 1)  # one of the day's references
    worse = worse_on_gates(candidate, active, noise, day_noise)
    scores = {prompt: mine, other: theirs} if prompt != other else {prompt: mine}
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
                    "editor": {"candidate": mine_editor, "against": their_editor},
                    "references": {
                        "similarity": measure.name,
                        "threshold": measure.threshold,
                        "count": mine.references,
                        "recall_noise": noise,
                        "matches": {name: _matches(s) for name, s in scores.items()},
                    },
                    "worse_on": worse,
                    "passed": not worse,
                },
                indent=2,
            )
        )
    else:
        for name in scores:
            _show_matches(name, scores[name], measure.threshold)
        table = Table("Measure", prompt, other, title=f"{len(samples)} transcripts")
        for name, value in candidate.items():
            flag = " [red]✗[/]" if name in worse else ""
            table.add_row(name, f"{value:.3g}{flag}", f"{active[name]:.3g}")
        console.print(table)
        if mine.references:
            console.print(
                f"References matched by {measure.name} (same point at ≥ {measure.threshold:g}); "
                f"recall differences under {noise:.2f} are within this set's noise."
            )
        console.print(
            f"[red]{prompt} is worse than {other} on: {', '.join(worse)}[/]"
            if worse
            else f"{prompt} is at least as good as {other} on {' and '.join(GATES)}"
            + (" and reference recall." if mine.references else ".")
        )
    if worse:
        sys.exit(1)


def _editor(app: App, prompt: str, chosen: str | None) -> str | None:
    """The editor pass a side of the comparison uses: none for a promptless backend."""
    if promptless(prompt):
        return None
    return chosen or app.config.extraction.editor_prompt or None


def _matches(scores: SetScore) -> list[dict[str, object]]:
    return [
        {
            "transcript": t.label,
            "candidate": m.candidate,
            "reference": t.references[m.reference] if m.reference >= 0 else None,
            "score": round(m.score, 3),
            "matched": m.matched,
        }
        for t in scores.transcripts
        for m in t.matches
    ]


def _show_matches(name: str, scores: SetScore, threshold: float) -> None:
    """Which reference each candidate came closest to: where recall is won or lost."""
    table = Table(
        "Transcript", "Candidate", "Closest reference", "Score",
        title=f"{name}: candidates against the references", show_lines=True,
    )  # fmt: skip
    for t in scores.transcripts:
        for m in t.matches:
            reference = (
                f"#{m.reference + 1} {t.references[m.reference]}" if m.reference >= 0 else ""
            )
            mark = "[green]✓[/]" if m.matched else ""
            table.add_row(
                esc(t.label),
                esc(_short(m.candidate)),
                esc(_short(reference)),
                f"{m.score:.2f} {mark}",
            )
        missed = [n + 1 for n, found in enumerate(t.found) if not found]
        if missed:
            table.add_row(esc(t.label), "[dim]not stated by any candidate[/]",
                          ", ".join(f"#{n}" for n in missed), "")  # fmt: skip
    if scores.references:
        console.print(table)


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
