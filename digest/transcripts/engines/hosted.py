"""OpenAI's transcription API, or any server that speaks it (`[transcription] base_url`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from digest.core.config import Config
from digest.core.errors import ConfigError, TranscriptError
from digest.core.models import Segment
from digest.transcripts.audio import PCM, SAMPLE_RATE, to_wav
from digest.transcripts.engines import EngineOptions, Progress, default_language, number

UPLOAD_WINDOW_SECONDS = 780  # 16-bit 16 kHz WAV stays under the API's 25 MiB limit
LOCAL_MODEL_NAMES = ("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "large")


@dataclass(frozen=True)
class HostedOptions(EngineOptions):
    base_url: str = ""
    api_key: str = field(default="", repr=False)


class HostedEngine:
    name = "openai"
    concurrent = False  # one upload at a time keeps within the API's rate limits
    Options = HostedOptions

    @staticmethod
    def configure(config: Config) -> HostedOptions:
        t = config.transcription
        if t.model in LOCAL_MODEL_NAMES:
            raise ConfigError(
                f"[transcription] model {t.model!r} is a local model; with backend 'openai' "
                "use 'whisper-1' or 'gpt-4o-transcribe'"
            )
        return HostedOptions(
            engine=t.backend,
            model=t.model,
            language=default_language(t.model, t.language),
            window_seconds=min(t.window_seconds, UPLOAD_WINDOW_SECONDS),
            parallel_windows=t.parallel_windows if t.parallel_windows > 0 else 1,
            base_url=t.base_url,
            api_key=config.secrets.openai_api_key,
        )

    def __init__(self, options: HostedOptions) -> None:
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
                avg_logprob=number(getattr(s, "avg_logprob", None)),
                no_speech_prob=number(getattr(s, "no_speech_prob", None)),
                compression_ratio=number(getattr(s, "compression_ratio", None)),
            )
            for s in rows
        ]
        if not segments and str(response.text).strip():
            segments = [Segment(0.0, duration, str(response.text).strip())]
        progress(duration)
        return segments, str(getattr(response, "language", "") or o.language)
