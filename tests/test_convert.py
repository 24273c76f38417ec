"""The CTranslate2 -> openai-whisper converter, and the openai-whisper engine it feeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from digest.transcripts.convert import read_ct2, to_openai_whisper
from digest.transcripts.engines import engine_options
from digest.transcripts.engines.faster_whisper import FasterWhisperEngine
from digest.transcripts.engines.openai_whisper import OpenAIWhisperEngine, OpenAIWhisperOptions
from digest.transcripts.packaged import ct2_folder
from digest.transcripts.wer import word_error_rate
from digest.transcripts.windows import transcribe_file
from tests.support.requirements import need
from tests.support.speech import WER_BOUND

Clips = dict[str, tuple[Path, str]]


@pytest.fixture(autouse=True)
def _openai_whisper() -> None:
    need("openai-whisper")  # the [openai-whisper] extra: a skip here, a failure in CI


def tiny_en() -> Path:
    folder = ct2_folder("tiny.en", Path())  # shipped whole: no state folder is written
    assert folder is not None
    return folder


def test_fused_projections_are_split_back_exactly() -> None:
    _, variables = read_ct2(tiny_en() / "model.bin")
    dims, state = to_openai_whisper(variables)
    fused = variables["encoder/layer_0/self_attention/linear_0/weight"].astype(np.float32)
    d = dims["n_audio_state"]
    assert np.array_equal(state["encoder.blocks.0.attn.key.weight"], fused[d : 2 * d])
    kv = variables["decoder/layer_1/attention/linear_1/weight"].astype(np.float32)
    assert np.array_equal(state["decoder.blocks.1.cross_attn.value.weight"], kv[d:])
    k_bias = variables["encoder/layer_0/self_attention/linear_0/bias"][d : 2 * d]
    assert not np.any(k_bias), "Whisper's key projection has no bias; dropping it loses nothing"
    assert dims == {
        "n_mels": 80,
        "n_audio_ctx": 1500,
        "n_audio_state": 384,
        "n_audio_head": 6,
        "n_audio_layer": 4,
        "n_vocab": 51864,
        "n_text_ctx": 448,
        "n_text_state": 384,
        "n_text_head": 6,
        "n_text_layer": 4,
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from click.testing import CliRunner

    from digest.cli import cli

    out = tmp_path_factory.mktemp("models") / "tiny.en.pt"
    result = CliRunner().invoke(cli, ["models", "convert-ct2", "tiny.en", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_converted_checkpoint_loads_strictly(checkpoint: Path) -> None:
    import whisper

    model = whisper.load_model(str(checkpoint), device="cpu")  # load_state_dict is strict
    assert model.dims.n_vocab == 51864 and not model.is_multilingual


@pytest.mark.slow  # real Whisper
def test_both_engines_give_the_same_words_on_the_same_weights(
    checkpoint: Path, make_config: Any, speech: Clips
) -> None:
    mp3, text = speech["matrix"]
    greedy = {"beam_size": 1, "compute_type": "float32", "vad_filter": False}
    fw = engine_options(make_config(transcription=greedy))
    ow = OpenAIWhisperOptions(
        engine="openai-whisper",
        model=str(checkpoint),
        language=fw.language,
        window_seconds=fw.window_seconds,
        model_path=str(checkpoint),
        beam_size=1,
    )
    a = transcribe_file(mp3, fw, FasterWhisperEngine(fw))
    b = transcribe_file(mp3, ow, OpenAIWhisperEngine(ow))
    assert b.engine == "openai-whisper"
    assert word_error_rate(text, b.text) < WER_BOUND
    # Same weights, same greedy decoding: the transcripts agree word for word.
    assert word_error_rate(a.text, b.text) == 0.0


@pytest.mark.slow  # real Whisper, twice, on two voices
def test_both_engines_side_by_side_on_a_robotic_and_a_natural_voice(
    checkpoint: Path, make_config: Any, speech: Clips, natural_speech: Clips
) -> None:
    """The comparison docs/benchmarks.md makes at length, on one clip: the default engine
    and openai-whisper at its defaults (beam 5), same weights, espeak-ng and piper."""
    fw = engine_options(make_config())
    ow = OpenAIWhisperOptions(
        engine="openai-whisper", model=str(checkpoint), language=fw.language,
        window_seconds=fw.window_seconds, model_path=str(checkpoint), beam_size=5,
    )  # fmt: skip
    engines = {"default": (fw, FasterWhisperEngine(fw)), "openai-whisper": (ow, None)}
    errors = {}
    for voice, clips in (("espeak-ng", speech), ("piper", natural_speech)):
        mp3, text = clips["compression"]
        for name, (options, engine) in engines.items():
            made = engine or OpenAIWhisperEngine(ow)
            errors[voice, name] = word_error_rate(text, transcribe_file(mp3, options, made).text)
    assert all(e < WER_BOUND for e in errors.values()), errors
    assert errors["piper", "default"] <= errors["espeak-ng", "default"], (
        f"the natural voice is the easier one to hear: {errors}"
    )
    assert errors["piper", "default"] < 0.15, errors


def test_openai_whisper_backend_finds_a_converted_model_in_the_state_dir(
    make_config: Any, checkpoint: Path
) -> None:
    config = make_config(transcription={"backend": "openai-whisper", "model": "tiny.en"})
    target = config.state_dir / "models" / "tiny.en.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(checkpoint.read_bytes())
    assert engine_options(config).model_path == str(target.resolve())


def test_missing_checkpoint_says_how_to_convert(make_config: Any) -> None:
    from digest.core.errors import ConfigError

    with pytest.raises(ConfigError, match="digest models convert-ct2"):
        engine_options(make_config(transcription={"backend": "openai-whisper", "model": "tiny.en"}))
