"""Configuration: discovery, validation, secrets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from digest.core.config import Config, load_config
from digest.core.errors import ConfigError
from digest.core.settings import SECTIONS


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={})
    assert config.source is None
    assert config.state_dir == tmp_path / "state"
    assert config.database_url == f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    assert (config.digest.insights, config.smtp.port, config.transcription.backend) == (
        5,
        587,
        "faster-whisper",
    )


def test_discovery_order_flag_then_env_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "digest.toml", "[digest]\ninsights = 3\n")
    env_file = write(tmp_path / "env.toml", "[digest]\ninsights = 4\n")
    flag_file = write(tmp_path / "flag.toml", "[digest]\ninsights = 6\n")
    assert load_config(None, env={}).digest.insights == 3
    assert load_config(None, env={"DIGEST_CONFIG": str(env_file)}).digest.insights == 4
    assert load_config(str(flag_file), env={"DIGEST_CONFIG": str(env_file)}).digest.insights == 6


def test_relative_state_dir_resolves_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = write(tmp_path / "etc" / "digest.toml", '[storage]\nstate_dir = "../var/digest"\n')
    assert load_config(str(path), env={}).state_dir == tmp_path / "var" / "digest"


def test_the_documented_keys_are_all_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path / "full.toml",
        """
[storage]
state_dir = "state"
database_url = ""
[feeds]
poll_interval_minutes = 30
allow_private_addresses = false
[transcription]
backend = "faster-whisper"
model = "tiny.en"
[extraction]
backend = "auto"
model = "gpt-4o-mini"
base_url = ""
[digest]
insights = 5
timezone = "UTC"
send_time = "07:00"
sender = "Podcast Digest <digest@localhost>"
[smtp]
host = ""
port = 587
security = "starttls"
username = ""
""",
    )
    assert load_config(str(path), env={}).smtp.security == "starttls"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[feeds]\npoll_intervall_minutes = 5\n",
            "unknown setting 'poll_intervall_minutes' in [feeds]",
        ),
        ("[feed]\nx = 1\n", "unknown section [feed]"),
        ('[digest]\ninsights = "five"\n', "[digest] insights must be an integer"),
        ("[feeds]\nallow_private_addresses = 1\n", "must be true or false"),
        ('[smtp]\nsecurity = "tls"\n', "must be one of starttls, ssl, none"),
        ('[digest]\ntimezone = "Mars/Olympus"\n', "unknown timezone 'Mars/Olympus'"),
        ('[digest]\nsend_time = "7am"\n', "send_time must be HH:MM"),
        ("[digest]\ninsights = 0\n", "greater than 0"),
        ("[digest]\ninsights = 5\n[smtp\nport = 1\n", "line 3"),
        ("digest = 5\n", "[digest] must be a table"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path), env={})
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.toml"), env={})


def test_secrets_come_from_the_environment_and_never_print() -> None:
    config = load_config(
        None, env={"OPENAI_API_KEY": "sk-secret-1", "DIGEST_SMTP_PASSWORD": "hunter2"}
    )
    assert config.secrets.openai_api_key == "sk-secret-1"
    assert config.secrets.smtp_password == "hunter2"
    assert "sk-secret-1" not in repr(config) and "hunter2" not in repr(config)
    assert "hunter2" not in repr(config.secrets)


def test_every_setting_is_documented() -> None:
    for name, section in SECTIONS.items():
        for f in dataclasses.fields(section):
            assert f.metadata.get("doc"), f"[{name}] {f.name} has no one-line doc"
    assert {f.name for f in dataclasses.fields(Config)} >= set(SECTIONS)
