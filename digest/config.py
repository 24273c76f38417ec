"""Settings: every one declared once below, with its default and a one-line reason.

One TOML file (found via `--config`, `$DIGEST_CONFIG`, `./digest.toml`, else the
defaults) plus environment variables for secrets. Unknown keys are an error, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import ConfigError

CONFIG_ENV = "DIGEST_CONFIG"
DEFAULT_CONFIG_NAME = "digest.toml"


def setting(default: Any, doc: str, *, choices: tuple[str, ...] = ()) -> Any:
    """Declare one setting: its default, its one-line documentation, its allowed values."""
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
        choices=("faster-whisper", "openai-whisper", "openai"),
    )
    model: str = setting(
        "tiny.en", "model name or local path (backend openai: whisper-1 or gpt-4o-transcribe)"
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
        choices=("auto", "openai", "extractive", "local"),
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
    timezone: str = setting("UTC", "default timezone of subscribers and of the schedule")
    send_time: str = setting("07:00", "default local send time, HH:MM")
    sender: str = setting("Podcast Digest <digest@localhost>", "From: header of the email")
    lookback_hours: int = setting(48, "insights of episodes extracted this recently are candidates")
    max_per_episode: int = setting(2, "at most this many insights from one episode per digest")
    similarity_threshold: float = setting(
        0.5, "insights whose word sets overlap more are duplicates"
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
    "orchestration": OrchestrationSettings,
    "web": WebSettings,
}


@dataclass(frozen=True)
class Config:
    storage: StorageSettings = StorageSettings()
    feeds: FeedSettings = FeedSettings()
    transcription: TranscriptionSettings = TranscriptionSettings()
    extraction: ExtractionSettings = ExtractionSettings()
    digest: DigestSettings = DigestSettings()
    smtp: SmtpSettings = SmtpSettings()
    orchestration: OrchestrationSettings = OrchestrationSettings()
    web: WebSettings = WebSettings()
    secrets: Secrets = field(default=Secrets(), repr=False)
    # Relative paths in the file resolve against the file's folder (else the cwd).
    base_dir: Path = Path(".")
    # The file the settings came from; None means built-in defaults.
    source: Path | None = None

    @property
    def state_dir(self) -> Path:
        return (self.base_dir / self.storage.state_dir).resolve()

    @property
    def database_url(self) -> str:
        return self.storage.database_url or f"sqlite:///{self.state_dir / 'digest.db'}"


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """`--config`, then `$DIGEST_CONFIG`, then `./digest.toml`; None means defaults."""
    for candidate, must_exist in ((explicit, True), (env.get(CONFIG_ENV), True)):
        if candidate:
            path = Path(candidate)
            if must_exist and not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            return path
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load_config(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file (if any), validate it, and add secrets from the environment."""
    env = os.environ if env is None else env
    path = find_config_file(explicit, env)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    where = str(path) if path else "defaults"
    return config_from_dict(
        data,
        env=env,
        base_dir=path.parent if path else Path("."),
        source=path,
        where=where,
    )


def config_from_dict(
    data: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    base_dir: Path = Path("."),
    source: Path | None = None,
    where: str = "config",
) -> Config:
    """Build a validated Config from parsed TOML; `where` names the source in errors."""
    env = {} if env is None else env
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown section [{unknown[0]}]; known sections: {', '.join(SECTIONS)}"
        )
    sections = {
        name: _section(cls, data.get(name, {}), name, where) for name, cls in SECTIONS.items()
    }
    secrets = Secrets(**{name: env.get(var, "") for name, var in SECRET_ENV.items()})
    smtp = sections["smtp"]
    if smtp.ca_file:  # relative to the config file, like every path in it
        ca_file = (base_dir / smtp.ca_file).resolve()
        if not ca_file.is_file():
            raise ConfigError(f"{where}: [smtp] ca_file {smtp.ca_file!r}: no such file")
        sections["smtp"] = dataclasses.replace(smtp, ca_file=str(ca_file))
    config = Config(**sections, secrets=secrets, base_dir=base_dir, source=source)
    _check_values(config, where)
    return config


def _section(cls: type, raw: Any, name: str, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [{name}] must be a table of settings")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown setting '{key}' in [{name}]; known: {', '.join(fields)}"
            )
        _check_type(fields[key], value, f"[{name}] {key}", where)
    defaults = cls()
    merged = {  # a table setting extends its default table rather than replacing it
        key: {**getattr(defaults, key), **value} if isinstance(value, dict) else value
        for key, value in raw.items()
    }
    return cls(**merged)


TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    dict: "a table",
}


def _check_type(f: dataclasses.Field[Any], value: Any, label: str, where: str) -> None:
    expected = f.metadata["type"]
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        kind = TYPE_NAMES.get(expected, expected.__name__)
        raise ConfigError(f"{where}: {label} must be {kind}; got {value!r}")
    choices = f.metadata.get("choices") or ()
    if choices and value not in choices:
        raise ConfigError(f"{where}: {label} must be one of {', '.join(choices)}; got {value!r}")


SEND_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")  # ASCII digits, matched whole


def _check_values(config: Config, where: str) -> None:
    positive = {
        "[feeds] poll_interval_minutes": config.feeds.poll_interval_minutes,
        "[feeds] timeout_seconds": config.feeds.timeout_seconds,
        "[feeds] max_feed_bytes": config.feeds.max_feed_bytes,
        "[feeds] concurrency": config.feeds.concurrency,
        "[digest] insights": config.digest.insights,
        "[smtp] port": config.smtp.port,
        "[web] header_timeout_seconds": config.web.header_timeout_seconds,
        "[web] body_timeout_seconds": config.web.body_timeout_seconds,
        "[web] keepalive_timeout_seconds": config.web.keepalive_timeout_seconds,
        "[web] max_connections": config.web.max_connections,
    }
    for label, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{where}: {label} must be greater than 0; got {value}")
    t = config.transcription
    for label, value in {
        "[transcription] window_seconds": t.window_seconds,
        "[transcription] timeout_seconds": t.timeout_seconds,
        "[transcription] max_audio_bytes": t.max_audio_bytes,
        "[transcription] max_duration_hours": t.max_duration_hours,
        "[transcription] download_timeout_seconds": t.download_timeout_seconds,
        "[transcription] beam_size": t.beam_size,
        "[transcription] max_attempts": t.max_attempts,
    }.items():
        if value <= 0:
            raise ConfigError(f"{where}: {label} must be greater than 0; got {value}")
    for model, price in config.extraction.prices.items():
        ok = isinstance(price, list) and len(price) == 2
        if not ok or not all(isinstance(p, int | float) and p >= 0 for p in price):
            raise ConfigError(
                f"{where}: [extraction.prices] {model} must be [input, output] "
                "USD per million tokens"
            )
    e = config.extraction
    for label, number in {
        "[extraction] max_insights_per_window": e.max_insights_per_window,
        "[extraction] window_tokens": e.window_tokens,
        "[extraction] timeout_seconds": e.timeout_seconds,
        "[digest] max_per_episode": config.digest.max_per_episode,
    }.items():
        if number <= 0:
            raise ConfigError(f"{where}: {label} must be greater than 0; got {number}")
    if not 0 < e.match_threshold <= 1 or not 0 < config.digest.similarity_threshold <= 1:
        raise ConfigError(f"{where}: thresholds must be between 0 and 1")
    if config.feeds.lookback_hours < 0:
        raise ConfigError(f"{where}: [feeds] lookback_hours cannot be negative")
    check_timezone(config.digest.timezone, f"{where}: [digest] timezone")
    if not SEND_TIME.fullmatch(config.digest.send_time):
        raise ConfigError(
            f"{where}: [digest] send_time must be HH:MM (24 h); got {config.digest.send_time!r}"
        )


def check_timezone(name: str, label: str = "timezone") -> ZoneInfo:
    """Return the zone, or explain that the name is not an IANA timezone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a name too long
        raise ConfigError(
            f"{label}: unknown timezone {name!r}; use an IANA name such as Europe/Berlin"
        ) from exc


# Names that resolve only inside one network (RFC 6761, RFC 8375, common intranet use).
LOCAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".localdomain",
    ".internal",
    ".lan",
    ".home.arpa",
    ".test",
    ".invalid",
)


def check_mail_links(config: Config) -> None:
    """With a mail server set, the links mailed to readers (one-click unsubscribe,
    preferences, confirmation) must reach them from the internet: refuse a `[web]
    base_url` on loopback, a private network or a host name without a domain."""
    if not config.smtp.host:
        return  # the outbox: nothing reaches a real reader
    url = config.web.base_url
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    problem = ""
    if parts.scheme not in ("http", "https") or not host:
        problem = "is not an http(s) URL"
    else:
        try:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None and not ip.is_global:
            problem = f"points at {host}, a loopback or private address"
        elif ip is None and (
            "." not in host or host.endswith(LOCAL_SUFFIXES) or host == "localhost"
        ):
            problem = f"names {host}, a host only this machine or network knows"
    if problem:
        raise ConfigError(
            f"[web] base_url = {url!r} {problem}, so the unsubscribe, preferences and "
            "confirmation links mailed to readers would not work; set [web] base_url to the "
            "public address of `digest web` (e.g. https://digest.example.org)"
        )
