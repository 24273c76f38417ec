"""What every benchmark shares: the machine it ran on, repeats with a warm-up, and tables.

These machines are noisy, so every figure is the median of at least three timed
repeats after one untimed warm-up, and the headline numbers are ratios between
alternatives measured in the same run.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ reuses the loopback servers in tests/support
    sys.path.insert(0, str(ROOT))


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare figures across machines."""
    cpu = ""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for package in ("faster-whisper", "ctranslate2", "openai-whisper", "torch", "prefect"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count() or 1,
        "memory_gib": round(memory, 1),
        "simd": sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_vnni", "avx_vnni"}),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "packages": versions,
    }


@dataclass(frozen=True)
class Timing:
    """Median wall and CPU seconds of the timed repeats (the warm-up is not among them)."""

    wall_s: float
    cpu_s: float
    repeats: int
    walls: tuple[float, ...]


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children, all threads."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident memory now, from /proc (flat-memory checks compare this across phases)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def repeat(
    run: Callable[[], Any],
    repeats: int = 3,
    *,
    warmup: bool = True,
    setup: Callable[[], Any] | None = None,
) -> Timing:
    """Run once untimed, then `repeats` timed runs (each after `setup`); report medians."""
    if warmup:
        if setup:
            setup()
        run()
    walls, cpus = [], []
    for _ in range(repeats):
        if setup:
            setup()
        cpu, start = cpu_seconds(), time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
        cpus.append(cpu_seconds() - cpu)
    return Timing(statistics.median(walls), statistics.median(cpus), repeats, tuple(walls))


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table: readable in a terminal and pasted as-is into docs/benchmarks.md."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [f"### {title}", "", line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


TARGET_HEADERS = ["measure", "value", "target", ""]


def verdict(value: float, target: float, *, at_most: bool = False) -> str:
    """'met' or 'MISSED', so a reader scanning the tables sees the misses at once."""
    ok = value <= target if at_most else value >= target
    return "met" if ok else "MISSED"


class Helper:
    """A loopback server in its own process (`python -m bench.<module>`), so serving never
    competes with the measured process for its GIL. It prints one line when ready and
    answers each command line on stdin with one line; EOF stops it."""

    def __init__(self, module: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"bench.{module}", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.ready = self.process.stdout.readline().strip()
        if not self.ready:
            raise RuntimeError(f"bench.{module} did not start (exit code {self.process.wait()})")

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(10)
