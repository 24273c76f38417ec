"""The digest read aloud: how long one edition takes to speak and encode, against how
long it plays, and the memory it takes.

Each repeat is a fresh process (`python -m bench.voice`), so the peak memory is that
of a process that only reads an edition aloud: the bundled voice (piper-tts, ONNX)
loaded, five insights from the corpus read, the PCM encoded to MP3 by ffmpeg, the
chapters and transcript written. Loading the voice is timed apart: a long-running
`digest run` pays it once, an edition pays the rest.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, TARGET_HEADERS, table, verdict

TARGET_RTF = 1.0  # reading aloud must be faster than listening


def child() -> dict[str, Any]:
    """One edition read aloud, in this process; its figures as a dict."""
    from datetime import timedelta

    from digest.core.clock import utcnow
    from digest.core.config import config_from_dict
    from digest.delivery import voice
    from digest.jobs.edition import edition, frozen_items
    from digest.jobs.send import send_digests
    from digest.store import Store
    from tests.support.seed import seed_insights

    work = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    config = config_from_dict(
        {
            "storage": {"state_dir": str(work), "database_url": f"sqlite:///{work}/db.sqlite"},
            "voice": {"enabled": False},  # the send freezes the edition; speaking is timed here
        },
        base_dir=work,
    )
    now = utcnow()
    with Store(config.database_url) as store:
        seed_insights(store, config)
        store.subscribers.add("reader@example.org", now - timedelta(days=1))
        send_digests(store, config, now=now)
        day = now.date().isoformat()
        items = frozen_items(store, day)
    assert items, "the corpus gives an edition"
    spoken = edition(config, day, "all", items)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    voice._voice()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    result = voice.speak(spoken, work / "voice")
    speak_s = time.perf_counter() - start
    me = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "insights": len(items),
        "words": sum(len(p.text.split()) for p in voice.script(spoken)),
        "audio_s": result.seconds,
        "mp3_kb": result.size / 1024,
        "load_s": load_s,
        "speak_s": speak_s,
        "peak_rss_mb": me.ru_maxrss / 1024,
        "rss_before_voice_mb": rss_before,
    }


def run(repeats: int = 3) -> dict[str, Any]:
    """One untimed warm-up process, then `repeats`; medians, and the highest peak."""
    runs = []
    for n in range(repeats + 1):
        done = subprocess.run(
            [sys.executable, "-m", "bench.voice"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            raise RuntimeError(f"bench.voice failed: {done.stderr[-2000:]}")
        if n:  # the first warms the page cache (model file, wheels)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return {
        **median,
        "repeats": repeats,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "real_time_factor": median["speak_s"] / median["audio_s"],
        "times_real_time": median["audio_s"] / median["speak_s"],
    }


def targets(r: dict[str, Any]) -> list[list[Any]]:
    return [
        ["real-time factor (speak ÷ play)", f"{r['real_time_factor']:.2f}", f"< {TARGET_RTF:g}",
         verdict(r["real_time_factor"], TARGET_RTF, at_most=True)],
    ]  # fmt: skip


def report(r: dict[str, Any]) -> str:
    rows = [
        [
            r["insights"],
            r["words"],
            f"{r['audio_s']:.0f}",
            f"{r['load_s']:.1f}",
            f"{r['speak_s']:.1f}",
            f"{r['real_time_factor']:.2f}",
            f"{r['times_real_time']:.1f}×",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['mp3_kb']:.0f}",
        ]
    ]
    headers = ["insights", "words", "audio s", "voice load s", "speak + encode s",
               "real-time factor", "speed", "peak RSS MB", "MP3 KB"]  # fmt: skip
    title = f"The edition read aloud (piper, en_US joe medium), median of {r['repeats']} processes"
    return (
        table(title, headers, rows)
        + f"\n\nPeak memory is the whole process's (Python, the store, the ONNX voice); "
        f"{r['rss_before_voice_mb']:.0f} MB of it was there before the voice loaded "
        "(ffmpeg encodes in its own process).\n\n"
        + table("The voice against targets", TARGET_HEADERS, targets(r))
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(child()), flush=True)
