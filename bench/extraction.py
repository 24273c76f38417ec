"""Extraction: what the LLM is sent, and what an unchanged re-run costs.

The pipeline's own `Extractor` (active prompt, window planning, grounding, cache)
talks to the loopback OpenAI-compatible server, which runs in another process and
reports the seconds it spent, so the extraction time below excludes the server.
Inputs: the four corpus scripts as four short episodes, and one hour-long episode
(the scripts three times over), since the prompt's fixed cost only amortises over
a realistic episode length.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import TARGET_HEADERS, Helper, repeat, table, verdict

TARGET_RATIO = 1.15


class LLMServer(Helper):
    def __init__(self) -> None:
        super().__init__("llmserver")
        self.base_url = self.ready

    def stats(self) -> dict[str, Any]:
        return dict(json.loads(self.ask("stats")))


def hour_long() -> Any:
    """The four scripts three times over as one ~80-minute transcript."""
    from digest.core.models import Segment, Transcript
    from tests.support.seed import SCRIPTS, corpus_transcript

    segments: list[Segment] = []
    for _ in range(3):
        for name in SCRIPTS:
            base = segments[-1].end if segments else 0.0
            for s in corpus_transcript(name).segments:
                segments.append(Segment(base + s.start, base + s.end, s.text))
    return Transcript("en", tuple(segments), "publisher", "publisher:text", "text")


def measure(label: str, server: LLMServer, seed: Any, repeats: int) -> dict[str, Any]:
    """First extraction (fresh store each repeat), then an unchanged re-run."""
    from digest.core.config import config_from_dict
    from digest.insights.proposals import CHARS_PER_TOKEN
    from digest.jobs.extraction import Extractor
    from digest.store import Store

    workdir = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    config = config_from_dict(
        {
            "storage": {"state_dir": str(workdir)},
            "extraction": {"backend": "openai", "base_url": server.base_url},
        },
        base_dir=workdir,
    )
    state: dict[str, Any] = {}

    def fresh() -> None:
        if "store" in state:
            state["store"].close()
        store = Store(f"sqlite:///{workdir / f'{time.monotonic_ns()}.db'}")
        state.update(store=store, ids=seed(store))

    def extract() -> None:
        store = state["store"]
        extractor = Extractor(store, config)
        state["results"] = [extractor.extract(store.episodes.get(i)) for i in state["ids"]]

    before = server.stats()
    timing = repeat(extract, repeats, setup=fresh)
    after = server.stats()
    runs = repeats + 1
    server_s = (after["server_s"] - before["server_s"]) / runs
    sent = (after["prompt_tokens"] - before["prompt_tokens"]) / runs
    calls = (after["calls"] - before["calls"]) / runs
    store = state["store"]
    stored = [store.transcripts.get(i).transcript for i in state["ids"]]
    text = "".join(s.text for t in stored for s in t.segments)
    transcript_tokens = len(text) / CHARS_PER_TOKEN
    extract()  # unchanged re-run: everything must come from the cache
    rerun_calls = server.stats()["calls"] - after["calls"]
    outcomes = [r.outcome for r in state["results"]]
    store.close()
    return {
        "input": label,
        "episodes": len(state["ids"]),
        "calls": calls,
        "transcript_tokens": transcript_tokens,
        "tokens_sent": sent,
        "token_ratio": sent / transcript_tokens,
        "rerun_calls": rerun_calls,
        "rerun_outcomes": sorted(set(outcomes)),
        "wall_s": timing.wall_s,
        "server_s": server_s,
        "extraction_s": max(0.0, timing.wall_s - server_s),
        "repeats": repeats,
    }


def run(repeats: int) -> dict[str, Any]:
    from digest.core.clock import utcnow
    from tests.support.seed import seed_transcripts

    server = LLMServer()

    def long_episode(store: Any) -> list[str]:
        [episode_id] = seed_transcripts(store, scripts=("kimi-k2",))
        store.transcripts.save(episode_id, hour_long(), utcnow())
        return [episode_id]

    try:
        rows = [
            measure("4 corpus scripts (4 short episodes)", server, seed_transcripts, repeats),
            measure("hour-long episode (scripts ×3)", server, long_episode, repeats),
        ]
    finally:
        server.close()
    return {
        "rows": rows,
        "token_ratio": rows[1]["token_ratio"],
        "rerun_calls": sum(r["rerun_calls"] for r in rows),
    }


def targets(r: dict[str, Any]) -> list[list[Any]]:
    """Each target the issue sets, the measured value, and whether it was met."""
    return [
        ["tokens sent ÷ transcript tokens (hour-long)", f"{r['token_ratio']:.3f}",
         f"≤ {TARGET_RATIO}", verdict(r["token_ratio"], TARGET_RATIO, at_most=True)],
        ["LLM calls on an unchanged re-run", r["rerun_calls"], "0",
         verdict(r["rerun_calls"], 0, at_most=True)],
    ]  # fmt: skip


def report(r: dict[str, Any]) -> str:
    rows = [
        [x["input"], x["episodes"], f"{x['calls']:.0f}", f"{x['transcript_tokens']:.0f}",
         f"{x['tokens_sent']:.0f}", f"{x['token_ratio']:.3f}", x["rerun_calls"],
         f"{x['extraction_s'] * 1000:.0f}", f"{x['server_s'] * 1000:.0f}"]
        for x in r["rows"]
    ]  # fmt: skip
    repeats = r["rows"][0]["repeats"]
    headers = ["input", "episodes", "calls", "transcript tokens", "tokens sent", "ratio",
               "re-run calls", "extraction ms", "server ms"]  # fmt: skip
    return (
        table(f"Extraction — loopback OpenAI-compatible server, median of {repeats}", headers, rows)
        + "\n\n"
        + table("Extraction against targets", TARGET_HEADERS, targets(r))
    )
