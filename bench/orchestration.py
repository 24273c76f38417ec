"""Orchestration overhead: `digest run` through Prefect against the same stages called
directly (bench/direct.py), each a fresh process on a fresh state with the bundled
sample podcast (three episodes, about 4.5 minutes of speech to transcribe).

The Prefect runs report to a Prefect server started once for the benchmark, so the
share below is the per-run cost (imports, flow and task runs, API calls); the
fixed start-up cost of ephemeral mode (no server configured) is measured separately.
"""

from __future__ import annotations

import json
import os
import re
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


def _fresh_state(root: Path, n: int, env: dict[str, str] | None = None) -> Path:
    """A new state dir with the sample feed and its subscriber (`digest init --sample`,
    which also prepares the Prefect database of `env`'s PREFECT_HOME)."""
    folder = root / f"run-{n}"
    config = folder / "digest.toml"
    folder.mkdir()
    config.write_text(f'[storage]\nstate_dir = "{folder / "state"}"\n')
    digest = Path(sys.executable).with_name("digest")
    subprocess.run(
        [str(digest), "--config", str(config), "init", "--sample"],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    return config


def _floor(env: dict[str, str]) -> dict[str, float]:
    """Prefect's own costs (bench/prefect_floor.py), each in a fresh process."""

    def measure(what: str) -> dict[str, float]:
        done = subprocess.run(
            [sys.executable, "-m", "bench.prefect_floor", what],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    imports, flow = measure("imports"), measure("flow")
    return {
        "import_s": imports["flows"] - imports["digest_jobs"],
        "fastapi_s": imports["fastapi"],
        "flow_run_s": flow["flow_run"],
    }


def _timed(command: list[str], env: dict[str, str], *, work: bool) -> float:
    """Wall seconds of a run; with `work`, it must process the three episodes and send."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    expected = "Processed 3 episode\\(s\\): 3 completed, 0 failed" if work else "Processed 0"
    complete = re.search(expected, done.stdout)
    if done.returncode != 0 or not complete:
        raise RuntimeError(f"{' '.join(command)}: {done.stdout[-1500:]}{done.stderr[-1500:]}")
    return wall


def prefect_database(home: Path) -> tuple[Any, str]:
    """PostgreSQL, as deployed (deploy/compose.yaml), when installed; else SQLite. Under
    SQLite the server's own event writes hold its database lock, and a concurrency-slot
    request can wait seconds behind them, which no production setup sees."""
    from tests.support.postgres import PostgresServer, find_bin
    from tests.support.prefect_server import postgres_database

    bindir = find_bin()
    if bindir is None:
        return None, f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    postgres = PostgresServer(bindir)
    return postgres, postgres_database(postgres)


def run(repeats: int) -> dict[str, Any]:
    from tests.support.prefect_server import PrefectServer

    root = Path(tempfile.mkdtemp(prefix="bench-orch-"))
    home = root / "prefect"
    home.mkdir()
    postgres, database = prefect_database(home)
    server = PrefectServer(home, database)
    digest = str(Path(sys.executable).with_name("digest"))
    direct_env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    server_only = ("PREFECT_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL")
    ephemeral_env = {k: v for k, v in server.env.items() if k not in server_only}
    counter = iter(range(1000))
    walls: dict[str, list[float]] = {
        k: [] for k in ("direct", "prefect", "direct_idle", "prefect_idle", "ephemeral", "cold")
    }

    def direct(config: Path, work: bool = True) -> float:
        return _timed([sys.executable, "-m", "bench.direct", str(config)], direct_env, work=work)

    def prefect(config: Path, env: dict[str, str], work: bool = True) -> float:
        return _timed([digest, "--config", str(config), "run"], env, work=work)

    def fresh() -> Path:
        return _fresh_state(root, next(counter))

    def fresh_in(env: dict[str, str]) -> Path:
        return _fresh_state(root, next(counter), env)

    try:
        direct(fresh())  # warm-up: model files and imports into the page cache
        prefect(fresh(), server.env)
        for _ in range(repeats):  # interleaved, so drift hits both alike
            config = fresh()
            walls["direct"].append(direct(config))
            walls["direct_idle"].append(direct(config, work=False))  # nothing new: fixed cost
            config = fresh()
            walls["prefect"].append(prefect(config, server.env))
            walls["prefect_idle"].append(prefect(config, server.env, work=False))
        for n in range(max(1, repeats // 3)):
            # A new user: a fresh PREFECT_HOME that `digest init` prepared, then two runs.
            cold_env = {**ephemeral_env, "PREFECT_HOME": str(root / f"cold-home-{n}")}
            walls["cold"].append(prefect(_fresh_state(root, next(counter), cold_env), cold_env))
            walls["ephemeral"].append(prefect(fresh_in(cold_env), cold_env))
        floor = _floor(server.env)
    finally:
        server.stop()
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
    m = {k: statistics.median(v) for k, v in walls.items()}
    fixed = m["prefect_idle"] - m["direct_idle"]
    overhead = m["prefect"] - m["direct"]
    return {
        "repeats": repeats,
        "prefect_database": "PostgreSQL" if postgres is not None else "SQLite",
        "direct_s": m["direct"],
        "prefect_s": m["prefect"],
        "ephemeral_s": m["ephemeral"],
        "cold_first_run_s": m["cold"],
        "floor_import_s": floor["import_s"],
        "floor_fastapi_s": floor["fastapi_s"],
        "floor_flow_run_s": floor["flow_run_s"],
        "overhead_s": overhead,
        "overhead_share": max(0.0, overhead) / m["prefect"],
        "fixed_overhead_s": fixed,
        "per_episode_overhead_s": (overhead - fixed) / 3,
        "direct_idle_s": m["direct_idle"],
        "prefect_idle_s": m["prefect_idle"],
        "ephemeral_startup_s": m["ephemeral"] - m["prefect"],
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
        ["stages called directly (bench/direct.py)", f"{r['direct_s']:.1f}",
         f"{r['direct_idle_s']:.1f}", "—"],
        ["`digest run` on a Prefect server", f"{r['prefect_s']:.1f}", f"{r['prefect_idle_s']:.1f}",
         f"{r['overhead_s']:+.1f} s ({r['overhead_share']:.1%})"],
        ["`digest run`, ephemeral mode (no server)", f"{r['ephemeral_s']:.1f}", "",
         f"{r['ephemeral_startup_s']:+.1f} s more: the temporary server"],
        ["first `digest run` of a new user (fresh PREFECT_HOME, after `digest init`)",
         f"{r['cold_first_run_s']:.1f}", "", ""],
    ]  # fmt: skip
    floor = r["floor_import_s"] + r["floor_fastapi_s"] + 3 * r["floor_flow_run_s"]
    profile = [
        ["importing Prefect (what `flows.pipeline` adds to `digest.jobs`)",
         f"{r['floor_import_s']:.2f}", "fixed"],
        ["importing FastAPI (Prefect encodes flow parameters with it)",
         f"{r['floor_fastapi_s']:.2f}", "fixed"],
        ["one flow run with three no-op tasks, on this server",
         f"{r['floor_flow_run_s']:.2f}", "3 per run + 1 per episode"],
        ["Prefect's floor for this run: imports + 3 flow runs", f"{floor:.2f}", "fixed"],
        ["measured fixed overhead (idle `digest run` − idle direct run)",
         f"{r['fixed_overhead_s']:.2f}", "fixed"],
        ["measured overhead per episode", f"{r['per_episode_overhead_s']:.2f}", "per episode"],
    ]  # fmt: skip
    title = (
        f"Orchestration — sample podcast (3 episodes, ~4.5 min audio), Prefect server on "
        f"{r['prefect_database']}, median of {r['repeats']}"
    )
    split = (
        f"Of the overhead, {r['fixed_overhead_s']:.1f} s is fixed per run (a run with nothing "
        f"new to do, through Prefect vs direct) and {r['per_episode_overhead_s']:.2f} s comes "
        "with each episode (its process-episode flow run and tasks)."
    )
    return (
        table(title, ["run", "wall s", "idle run s", "over direct"], rows)
        + f"\n\n{split}\n\n"
        + table("Where the overhead goes: Prefect's own floor", ["part", "s", "paid"], profile)
        + "\n\n"
        + table("Orchestration against targets", TARGET_HEADERS, targets(r))
    )
