"""Prefect's own floor, measured against the same server as `digest run`: what one
flow run with three no-op tasks costs (one process-episode run has that shape), and
what importing Prefect adds to a process. Run by bench/orchestration.py:

    python -m bench.prefect_floor imports|flow
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time


def imports() -> dict[str, float]:
    """Seconds each import adds in a fresh interpreter (median of 5)."""

    def cost(module: str) -> float:
        code = (
            f"import time; s = time.perf_counter(); import {module}; print(time.perf_counter() - s)"
        )
        runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True) for _ in range(5)]  # fmt: skip
        return statistics.median(float(r.stdout) for r in runs)

    return {
        "digest_jobs": cost("digest.jobs"),  # what the direct run imports too
        "flows": cost("digest.jobs, flows.pipeline"),
        "fastapi": cost("fastapi"),  # Prefect encodes flow parameters with it, on first use
    }


def flow_run_seconds(repeats: int = 10) -> float:
    """Median wall time of a flow run with three no-op tasks, after a warm-up run."""
    import flows  # noqa: F401, I001  (the project's Prefect defaults, before Prefect)
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.settings import temporary_settings

    @task(cache_policy=NO_CACHE, persist_result=False)
    def step(n: int) -> int:
        return n

    @flow(persist_result=False)
    def shaped_like_an_episode() -> int:
        return step(1) + step(2) + step(3)

    walls = []
    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        for _ in range(repeats + 1):
            start = time.perf_counter()
            shaped_like_an_episode()
            walls.append(time.perf_counter() - start)
    return statistics.median(walls[1:])


if __name__ == "__main__":
    what = sys.argv[1]
    print(json.dumps(imports() if what == "imports" else {"flow_run": flow_run_seconds()}))
