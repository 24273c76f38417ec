"""Orchestration overhead: `digest run` through Prefect against the same stages called
directly (bench/direct.py), each a fresh process on a fresh state with the bundled
sample podcast (three episodes, about 4.5 minutes of speech to transcribe).

The Prefect runs report to a Prefect server started once for the benchmark, so the
share below is the per-run cost (imports, flow and task runs, API calls); the
fixed start-up cost of ephemeral mode (no server configured) is measured separately.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import TARGET_HEADERS, table, verdict

TARGET_SHARE = 0.10


def _fresh_state(root: Path, n: int) -> Path:
    """A new state dir with the sample feed and its subscriber (`digest init --sample`)."""
    folder = root / f"run-{n}"
    config = folder / "digest.toml"
    folder.mkdir()
    config.write_text(f'[storage]\nstate_dir = "{folder / "state"}"\n')
    digest = Path(sys.executable).with_name("digest")
    subprocess.run(
        [str(digest), "--config", str(config), "init", "--sample"], check=True, capture_output=True
    )
    return config


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0 or "failed" in done.stdout.split("Processed", 1)[-1].split("\n")[0]:
        raise RuntimeError(f"{command[-1]} failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")
    return wall


def run(repeats: int) -> dict[str, Any]:
    from tests.support.prefect_server import PrefectServer

    root = Path(tempfile.mkdtemp(prefix="bench-orch-"))
    home = root / "prefect"
    home.mkdir()
    server = PrefectServer(home, f"sqlite+aiosqlite:///{home / 'prefect.db'}")
    digest = str(Path(sys.executable).with_name("digest"))
    direct_env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    server_only = ("PREFECT_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL")
    ephemeral_env = {k: v for k, v in server.env.items() if k not in server_only}
    ephemeral_env["PREFECT_HOME"] = str(root / "ephemeral-home")
    counter = iter(range(1000))
    walls: dict[str, list[float]] = {"direct": [], "prefect": [], "ephemeral": []}

    def direct() -> float:
        config = _fresh_state(root, next(counter))
        return _timed([sys.executable, "-m", "bench.direct", str(config)], direct_env)

    def prefect(env: dict[str, str]) -> float:
        config = _fresh_state(root, next(counter))
        return _timed([digest, "--config", str(config), "run"], env)

    try:
        direct()  # warm-up: model files and imports into the page cache
        prefect(server.env)
        for _ in range(repeats):  # interleaved, so drift hits both alike
            walls["direct"].append(direct())
            walls["prefect"].append(prefect(server.env))
        for _ in range(max(1, repeats // 3)):
            walls["ephemeral"].append(prefect(ephemeral_env))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    direct_s = statistics.median(walls["direct"])
    prefect_s = statistics.median(walls["prefect"])
    ephemeral_s = statistics.median(walls["ephemeral"])
    return {
        "repeats": repeats,
        "direct_s": direct_s,
        "prefect_s": prefect_s,
        "ephemeral_s": ephemeral_s,
        "overhead_s": prefect_s - direct_s,
        "overhead_share": max(0.0, prefect_s - direct_s) / prefect_s,
        "ephemeral_startup_s": ephemeral_s - prefect_s,
        "walls": walls,
    }


def targets(r: dict[str, Any]) -> list[list[Any]]:
    """Each target the issue sets, the measured value, and whether it was met."""
    return [
        ["orchestration share of a run", f"{r['overhead_share']:.1%}", f"≤ {TARGET_SHARE:.0%}",
         verdict(r["overhead_share"], TARGET_SHARE, at_most=True)],
    ]  # fmt: skip


def report(r: dict[str, Any]) -> str:
    rows = [
        ["stages called directly (bench/direct.py)", f"{r['direct_s']:.1f}", "—"],
        ["`digest run` on a Prefect server", f"{r['prefect_s']:.1f}",
         f"{r['overhead_s']:+.1f} s ({r['overhead_share']:.1%})"],
        ["`digest run`, ephemeral mode (no server)", f"{r['ephemeral_s']:.1f}",
         f"{r['ephemeral_startup_s']:+.1f} s fixed start-up"],
    ]  # fmt: skip
    title = f"Orchestration — sample podcast (3 episodes, ~4.5 min audio), median of {r['repeats']}"
    return (
        table(title, ["run", "wall s", "over direct"], rows)
        + "\n\n"
        + table("Orchestration against targets", TARGET_HEADERS, targets(r))
    )
