"""docs/benchmarks.md from the latest results: the prose lives in benchmarks.md.j2 beside
this file, every figure comes from the run that wrote it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from bench import delivery, extraction, orchestration, polling, transcription, voice, workers
from bench.common import TARGET_HEADERS, table

STAGES = {
    "transcription": transcription,
    "polling": polling,
    "extraction": extraction,
    "delivery": delivery,
    "voice": voice,
    "orchestration": orchestration,
    "workers": workers,
}
TARGETS = {name: module.targets for name, module in STAGES.items() if hasattr(module, "targets")}


def write_docs(path: Path, results: dict[str, Any]) -> None:
    """Render the page from the figures; stages without figures are left out, not shown
    stale."""
    tables = {name: m.report(results[name]) for name, m in STAGES.items() if name in results}
    summary = [
        [stage, *row] for stage, targets in TARGETS.items() if stage in results
        for row in targets(results[stage])
    ]  # fmt: skip
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    page = env.get_template("benchmarks.md.j2").render(
        r=results,
        tables=tables,
        summary=table("Targets", ["stage", *TARGET_HEADERS], summary),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
