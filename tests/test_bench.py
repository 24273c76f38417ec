"""The benchmark harness at toy sizes: its plumbing works and its invariants hold.

Figures are not asserted here (speed lives in `python bench/run.py`, never in unit
tests); what is asserted is what must be true at any size: re-polls get 304s, a
re-run makes no LLM calls, a dropped connection neither loses nor doubles mail,
and the report and docs render from the results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import delivery, extraction, polling, transcription
from bench.docs import write_docs


@pytest.mark.slow  # 40 feeds polled twice, with the failing ones' retries
def test_polling_benchmark_sees_304s_and_isolated_failures() -> None:
    r = polling.run(40, repeats=1)
    assert r["first_outcomes"] == {"updated": 36, "failed": 4}  # 2 × (500, 404); 2 redirects
    assert r["repoll_outcomes"] == {"not_modified": 36, "failed": 4}
    # Only the error pages' bodies travel again; every 304 is headers only.
    assert r["repoll_mb_transferred"] < r["first_mb_transferred"] / 1000
    assert "Feed polling" in polling.report(r)


def test_extraction_benchmark_reruns_without_calls() -> None:
    r = extraction.run(repeats=1)
    assert r["rerun_calls"] == 0
    short, long = r["rows"]
    assert short["episodes"] == 4 and short["calls"] == 4
    assert long["calls"] >= 2, "the hour-long transcript needs more than one window"
    assert 1.0 < long["token_ratio"] < short["token_ratio"], "the prompt amortises"


def test_delivery_benchmark_loses_and_doubles_nothing_across_a_drop() -> None:
    r = delivery.run(60, repeats=1)
    for scenario in (r["clean"], r["drop"], r["per_selection"]):
        assert scenario["recipients"] == scenario["messages"] == 60
        assert scenario["doubled"] == 0 and scenario["message_ids"] == 60
    assert r["clean"]["connections"] == 1 and r["drop"]["connections"] == 2
    assert r["per_selection"]["editions"] == delivery.SELECTIONS + 1, "one per selection + all"
    assert r["channels_deliveries"] == 60, "each reader once, whatever their channel"
    kinds = r["channels_by_kind"]
    assert kinds["email"] == kinds["webhook"] == kinds["feed"] == 20
    assert r["channels_webhooks"] == {"posts": 20, "ids": 20, "doubled": 0}


@pytest.mark.slow
def test_transcription_benchmark_runs_a_configuration_in_its_own_process(
    speech: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    clip, text = speech["matrix"]
    r = transcription.run_config(transcription.DEFAULT, [clip], clip, 1)
    assert r["options"]["engine"] == "faster-whisper" and r["options"]["cpu_threads"] == 1
    assert transcription.pooled_wer([text], r["texts"]) < 0.3
    assert r["peak_rss_mb"] > 50 and r["wall_s"] > 0


def test_docs_render_from_results(tmp_path: Path) -> None:
    results: dict[str, Any] = {
        "mode": "quick",
        "command": "python bench/run.py --quick",
        "finished": "2026-11-23T00:00:00+00:00",
        "machine": {"cpu": "Test CPU", "cores": 2, "memory_gib": 1.0, "simd": [],
                    "python": "3.11", "system": "Linux", "packages": {"prefect": "3.8.8"}},
        "extraction": extraction.run(repeats=1),
    }  # fmt: skip
    out = tmp_path / "benchmarks.md"
    write_docs(out, results)
    page = out.read_text()
    assert "Test CPU" in page and "## 3. Extraction" in page
    assert "## 1. Transcription" not in page, "stages not run are left out, not shown stale"
    [row] = [
        line
        for line in page.splitlines()
        if line.startswith("| extraction ") and "unchanged re-run" in line
    ]
    assert [cell.strip() for cell in row.split("|")[1:-1]] == [
        "extraction",
        "LLM calls on an unchanged re-run",
        "0",
        "0",
        "met",
    ]
