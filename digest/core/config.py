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

from digest.core.errors import ConfigError
from digest.core.settings import (
    SECRET_ENV,
    SECTIONS,
    DigestSettings,
    ExtractionSettings,
    FeedSettings,
    OrchestrationSettings,
    Secrets,
    SmtpSettings,
    StorageSettings,
    TranscriptionSettings,
    VoiceSettings,
    WebhookSettings,
    WebSettings,
)

CONFIG_ENV = "DIGEST_CONFIG"
DEFAULT_CONFIG_NAME = "digest.toml"


@dataclass(frozen=True)
class Config:
    storage: StorageSettings = field(default_factory=StorageSettings)
    feeds: FeedSettings = field(default_factory=FeedSettings)
    transcription: TranscriptionSettings = field(default_factory=TranscriptionSettings)
    extraction: ExtractionSettings = field(default_factory=ExtractionSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    orchestration: OrchestrationSettings = field(default_factory=OrchestrationSettings)
    web: WebSettings = field(default_factory=WebSettings)
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
