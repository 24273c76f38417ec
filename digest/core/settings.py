"""Every setting, declared once: its default, its type, its allowed values and a one-line
reason, grouped by stage. `digest config` prints them; `digest.core.config` loads a
file against them. Choices that name an alternative (an engine, a backend) come from
the registries, so a registered alternative is a valid choice at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from digest.core.registry import BACKENDS, ENGINES


def setting(default: Any, doc: str, *, choices: Any = ()) -> Any:
    """Declare one setting: its default, its one-line documentation, its allowed values
    (a tuple, or a registry, whose names are read when a file is checked)."""
    metadata = {"doc": doc, "choices": choices, "type": type(default)}
    if isinstance(default, dict):  # a table, e.g. prices: each Config gets its own copy
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class StorageSettings:
    state_dir: str = setting("state", "database, media cache, transcripts, outbox")
    database_url: str = setting(
        "", "default sqlite:///<state_dir>/digest.db; postgresql+psycopg://... works too"
    )


@dataclass(frozen=True)
class FeedSettings:
    poll_interval_minutes: int = setting(30, "how often the scheduled poll runs")
    allow_private_addresses: bool = setting(
        False, "refuse feed/enclosure URLs that resolve to loopback, private, link-local addresses"
    )
    allow_local_files: bool = setting(
        False,
        "true: `feeds add` and OPML import accept file: URLs and paths (the sample always works)",
    )
    lookback_hours: int = setting(
        48, "first poll of a new feed: older episodes are recorded as skipped, never downloaded"
    )
    timeout_seconds: float = setting(30.0, "whole-request deadline for one feed fetch")
    max_feed_bytes: int = setting(
        20 * 1024 * 1024, "a feed larger than this fails (real ones are < 5 MB)"
    )
    concurrency: int = setting(8, "feeds fetched at once during a poll")
    alert_after_failures: int = setting(
        6, "a feed failing this many polls in a row raises one alert"
    )


@dataclass(frozen=True)
class TranscriptionSettings:
    backend: str = setting(
        "faster-whisper",
        "which engine transcribes",
        choices=ENGINES,
    )
    model: str = setting(
        "tiny.en",
        "tiny.en | base (extra whisper-base) | a model folder or .pt path "
        "(backend openai: whisper-1 or gpt-4o-transcribe)",
    )
    device: str = setting("auto", "faster-whisper device", choices=("auto", "cpu", "cuda"))
    compute_type: str = setting(
        "auto",
        "auto: int8 on CPU, float16 on GPU",
        choices=("auto", "int8", "int8_float32", "int8_float16", "float16", "float32"),
    )
    beam_size: int = setting(5, "1 is greedy (fastest); 5 was 7 WER points better on test speech")
    vad_filter: bool = setting(True, "skip silence and music with Silero VAD (ships in the wheel)")
    batch_size: int = setting(0, "0: sequential decoding; > 0: BatchedInferencePipeline batch")
    cpu_threads: int = setting(
        1, "CTranslate2 threads per window; 1 is fastest for tiny/base (docs/benchmarks.md)"
    )
    parallel_windows: int = setting(
        0, "windows transcribed at once (faster-whisper on CPU); 0: one per CPU core"
    )
    language: str = setting("", "spoken language code; empty: detect (English for *.en models)")
    window_seconds: int = setting(
        300, "audio per window: bounds memory (about 1 MB per second with faster-whisper)"
    )
    timeout_seconds: int = setting(4 * 3600, "an episode still transcribing after this is stopped")
    base_url: str = setting("", "backend openai: any OpenAI-compatible /v1 endpoint")
    keep_audio: bool = setting(False, "keep downloaded media after transcription")
    max_audio_bytes: int = setting(1024**3, "an enclosure larger than this fails")
    max_duration_hours: float = setting(
        8.0, "audio longer than this fails (a 20 h file is a mistake)"
    )
    download_timeout_seconds: int = setting(1800, "whole-download deadline for one enclosure")
    max_attempts: int = setting(3, "an episode that failed this many times is left alone")
    retry_after_minutes: int = setting(
        10, "a failure that may pass (network) is tried again after this, doubling each time"
    )


@dataclass(frozen=True)
class ExtractionSettings:
    backend: str = setting(
        "auto",
        "auto: openai if a key or base_url is set, else extractive; local: llama.cpp in-process",
        choices=BACKENDS.choices("auto"),
    )
    model: str = setting("gpt-4o-mini", "chat model (backend local: the path of a GGUF model file)")
    base_url: str = setting("", "any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp)")
    prompt: str = setting("insights", "active prompt: templates/prompts/<prompt>.j2")
    prompts_dir: str = setting(
        "", "folder of prompt templates; empty: the bundled templates/prompts"
    )
    temperature: float = setting(0.2, "sampling temperature; low keeps quotes verbatim")
    max_insights_per_window: int = setting(6, "insights asked for per transcript window")
    window_tokens: int = setting(12000, "transcript tokens per call; longer transcripts are split")
    overlap_tokens: int = setting(300, "context shared by neighbouring windows (not re-extracted)")
    timeout_seconds: float = setting(120.0, "one chat completion, before the client retries it")
    max_retries: int = setting(5, "retries of 429/5xx/timeouts, with backoff honouring Retry-After")
    json_retries: int = setting(2, "re-asks after an answer that is not the JSON asked for")
    local_threads: int = setting(0, "backend local: CPU threads; 0: half the cores")
    local_context: int = setting(8192, "backend local: context size in tokens")
    max_answer_tokens: int = setting(
        2000, "token budget of one answer; a cut-off answer is asked again with twice as much"
    )
    editor_prompt: str = setting(
        "editor",
        "the day's editor pass (LLM backends): templates/prompts/day/<name>.j2 ranks the "
        "day's candidates across episodes in one request; empty: off",
    )
    editor_candidates: int = setting(
        30, "editor pass: the day's best candidates it sees (its prompt's token budget)"
    )
    editor_answer_tokens: int = setting(
        400, "editor pass: token budget of its answer; a cut-off answer falls back"
    )
    match_threshold: float = setting(
        0.85, "share of a quote's words that must match the transcript"
    )
    prices: dict[str, list[float]] = setting(  # noqa: RUF009 - setting() is a field()
        {"gpt-4o-mini": [0.15, 0.60], "gpt-4o": [2.50, 10.00], "gpt-4.1-mini": [0.40, 1.60]},
        "USD per million input and output tokens, by model, for cost estimates",
    )


@dataclass(frozen=True)
class DigestSettings:
    insights: int = setting(5, "insights per daily email")
    weekly_insights: int = setting(7, "insights per weekly email (the week's best)")
    timezone: str = setting("UTC", "default timezone of subscribers and of the schedule")
    send_time: str = setting("07:00", "default local send time, HH:MM")
    sender: str = setting("Podcast Digest <digest@localhost>", "From: header of the email")
    lookback_hours: int = setting(48, "insights of episodes extracted this recently are candidates")
    max_per_episode: int = setting(2, "at most this many insights from one episode per digest")
    similarity_threshold: float = setting(
        0.5,
        "insights whose word sets overlap more are duplicates (without the meaning "
        "extra; with it, two insights at cosine 0.8 or more make the same point)",
    )


@dataclass(frozen=True)
class SmtpSettings:
    host: str = setting("", "empty: write .eml files to <state_dir>/outbox instead of sending")
    port: int = setting(587, "SMTP port")
    security: str = setting("starttls", "transport security", choices=("starttls", "ssl", "none"))
    username: str = setting("", "SMTP login; the password comes from $DIGEST_SMTP_PASSWORD")
    timeout_seconds: float = setting(30.0, "one SMTP command, before the connection is retried")
    ca_file: str = setting(
        "", "CA bundle (PEM) for a server signed by a private CA; empty: the system store"
    )


@dataclass(frozen=True)
class WebhookSettings:
    timeout_seconds: float = setting(10.0, "one POST to a reader's webhook, before it is given up")
    attempts: int = setting(
        3, "tries per delivery in one send when the receiver is busy or out of reach"
    )
    backoff_seconds: float = setting(2.0, "wait before the second try; doubled for each next one")
    allow_private_addresses: bool = setting(
        False, "accept webhook URLs on loopback or private addresses (a receiver on this network)"
    )


@dataclass(frozen=True)
class VoiceSettings:
    enabled: bool = setting(
        True, "read each private-feed edition aloud (MP3) when the voice extra is installed"
    )
    bitrate: str = setting("48k", "MP3 bitrate of the edition read aloud (speech: 32k-64k)")


@dataclass(frozen=True)
class OrchestrationSettings:
    cpu_pool: str = setting("cpu", "work pool for polling, extraction and the digest")
    gpu_pool: str = setting("gpu", "work pool for transcription (add workers here to scale out)")
    whisper_slots: int = setting(1, "global concurrency limit 'whisper': transcriptions at once")
    llm_requests_per_minute: int = setting(60, "rate limit 'llm' on chat completions")
    lease_seconds: int = setting(
        120, "a worker's claim on an episode or a send lapses this long after it stops renewing"
    )


@dataclass(frozen=True)
class WebSettings:
    base_url: str = setting(
        "http://localhost:8025",
        "where readers reach `digest web`; mailed links point here (public with an [smtp] host)",
    )
    host: str = setting("127.0.0.1", "address `digest web` listens on")
    port: int = setting(8025, "port `digest web` listens on")
    confirm_hours: int = setting(48, "a sign-up's confirmation link works this long")
    confirmations_per_address: int = setting(
        3, "confirmation emails one address can be sent in 24 hours"
    )
    signups_per_client: int = setting(20, "sign-ups one client IP can make in an hour")
    forwarded_allow_ips: str = setting(
        "", "proxies whose X-Forwarded-For names the client (comma list, e.g. 127.0.0.1)"
    )
    header_timeout_seconds: float = setting(
        10.0, "a client must send a request's headers within this (slowloris)"
    )
    body_timeout_seconds: float = setting(10.0, "... and its form within this")
    keepalive_timeout_seconds: int = setting(5, "an idle connection is closed after this")
    max_connections: int = setting(
        200, "connections served at once; beyond this requests are answered 503"
    )


@dataclass(frozen=True)
class Secrets:
    """Secrets come only from the environment, and never print."""

    openai_api_key: str = field(default="", repr=False)
    smtp_password: str = field(default="", repr=False)
    web_secret: str = field(default="", repr=False)  # empty: <state_dir>/web-secret


SECRET_ENV = {
    "openai_api_key": "OPENAI_API_KEY",
    "smtp_password": "DIGEST_SMTP_PASSWORD",
    "web_secret": "DIGEST_WEB_SECRET",
}

SECTIONS: dict[str, type] = {
    "storage": StorageSettings,
    "feeds": FeedSettings,
    "transcription": TranscriptionSettings,
    "extraction": ExtractionSettings,
    "digest": DigestSettings,
    "smtp": SmtpSettings,
    "webhook": WebhookSettings,
    "voice": VoiceSettings,
    "orchestration": OrchestrationSettings,
    "web": WebSettings,
}
