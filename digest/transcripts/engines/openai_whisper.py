"""openai-whisper, the reference implementation, for honest comparisons on the same
weights (`digest models convert-ct2` turns the CTranslate2 model into its checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digest.core.config import Config
from digest.core.errors import ConfigError
from digest.core.models import Segment
from digest.transcripts.audio import PCM, SAMPLE_RATE
from digest.transcripts.engines import EngineOptions, Progress, default_language, number


@dataclass(frozen=True)
class OpenAIWhisperOptions(EngineOptions):
    model_path: str = ""  # the resolved .pt checkpoint
    beam_size: int = 5


class OpenAIWhisperEngine:
    name = "openai-whisper"
    concurrent = False  # its decoder installs hooks on the shared model: not thread-safe
    Options = OpenAIWhisperOptions

    @staticmethod
    def configure(config: Config) -> OpenAIWhisperOptions:
        t = config.transcription
        return OpenAIWhisperOptions(
            engine=t.backend,
            model=t.model,
            language=default_language(t.model, t.language),
            window_seconds=t.window_seconds,
            parallel_windows=t.parallel_windows if t.parallel_windows > 0 else 1,
            model_path=checkpoint(t.model, config.state_dir),
            beam_size=t.beam_size,
        )

    def __init__(self, options: OpenAIWhisperOptions) -> None:
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
                avg_logprob=number(s.get("avg_logprob")),
                no_speech_prob=number(s.get("no_speech_prob")),
                compression_ratio=number(s.get("compression_ratio")),
            )
            for s in result["segments"]
        ]
        progress(len(pcm) / SAMPLE_RATE)
        return segments, str(result.get("language") or language or "")


def checkpoint(model: str, state_dir: Path) -> str:
    for path in (Path(model).expanduser(), state_dir / "models" / f"{model}.pt"):
        if path.is_file():
            return str(path.resolve())
    raise ConfigError(
        f"openai-whisper checkpoint {model!r} not found and weights cannot be downloaded here; "
        f"convert the CTranslate2 model with `digest models convert-ct2 PATH "
        f"{state_dir / 'models' / (model + '.pt')}`"
    )
