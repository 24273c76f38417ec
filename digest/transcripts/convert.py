"""CTranslate2 Whisper model (model.bin) to an openai-whisper checkpoint (.pt).

Weights cannot be downloaded here, and comparing engines is only honest on the same
weights: this reads the CTranslate2 container (header, named arrays, aliases),
undoes its fused attention projections and writes the state dict that
`whisper.load_model(path)` loads strictly. Reading and mapping are numpy only;
torch is needed just to save.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from digest.core.errors import ConfigError

Array = npt.NDArray[Any]
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # CTranslate2's enum order


def read_ct2(path: Path) -> tuple[str, dict[str, Array]]:
    """Parse model.bin into (spec name, {variable name: array}), aliases resolved."""
    data = path.read_bytes()
    offset = 0

    def take(fmt: str) -> Any:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal offset
        length = take("H")
        text = data[offset : offset + length - 1].decode()
        offset += length
        return text

    version = take("I")
    if version < 5:
        raise ConfigError(f"{path}: CTranslate2 binary version {version} is too old to convert")
    spec = string()
    take("I")  # spec revision
    variables: dict[str, Array] = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype = DTYPES[take("B")]
        size = take("I")
        raw = data[offset : offset + size]
        offset += size
        variables[name] = _array(raw, dtype).reshape(shape)
    for _ in range(take("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return spec, variables


def _array(raw: bytes, dtype: str) -> Array:
    if dtype == "bfloat16":
        return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, np.dtype(dtype))


def _float(variables: dict[str, Array], name: str) -> Array:
    """A weight as float32, de-quantised when CTranslate2 stored int8 with a scale."""
    value = variables[name]
    if value.dtype == np.int8:
        scale = variables[name.rsplit("/", 1)[0] + "/weight_scale"]
        return value.astype(np.float32) / scale.reshape(-1, *([1] * (value.ndim - 1)))
    return value.astype(np.float32)


def _linear(
    v: dict[str, Array], src: str, dst: str, out: dict[str, Array], bias: bool = True
) -> None:
    out[f"{dst}.weight"] = _float(v, f"{src}/weight")
    if bias:
        out[f"{dst}.bias"] = _float(v, f"{src}/bias")


def _norm(v: dict[str, Array], src: str, dst: str, out: dict[str, Array]) -> None:
    out[f"{dst}.weight"] = _float(v, f"{src}/gamma")
    out[f"{dst}.bias"] = _float(v, f"{src}/beta")


def _split(v: dict[str, Array], src: str, parts: int) -> tuple[list[Array], list[Array]]:
    weight, bias = _float(v, f"{src}/weight"), _float(v, f"{src}/bias")
    return np.split(weight, parts), np.split(bias, parts)


def _attention(v: dict[str, Array], src: str, dst: str, out: dict[str, Array]) -> None:
    """Self-attention: CTranslate2 fuses q, k, v into linear_0; k never has a bias."""
    (wq, wk, wv), (bq, _bk, bv) = _split(v, f"{src}/linear_0", 3)
    out.update({f"{dst}.query.weight": wq, f"{dst}.query.bias": bq, f"{dst}.key.weight": wk})
    out.update({f"{dst}.value.weight": wv, f"{dst}.value.bias": bv})
    _linear(v, f"{src}/linear_1", f"{dst}.out", out)


def _cross_attention(v: dict[str, Array], src: str, dst: str, out: dict[str, Array]) -> None:
    """Cross-attention: query alone in linear_0, k and v fused in linear_1, out in linear_2."""
    _linear(v, f"{src}/linear_0", f"{dst}.query", out)
    (wk, wv), (_bk, bv) = _split(v, f"{src}/linear_1", 2)
    out.update({f"{dst}.key.weight": wk, f"{dst}.value.weight": wv, f"{dst}.value.bias": bv})
    _linear(v, f"{src}/linear_2", f"{dst}.out", out)


def _block(v: dict[str, Array], src: str, dst: str, out: dict[str, Array], cross: bool) -> None:
    _norm(v, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln", out)
    _attention(v, f"{src}/self_attention", f"{dst}.attn", out)
    if cross:
        _norm(v, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln", out)
        _cross_attention(v, f"{src}/attention", f"{dst}.cross_attn", out)
    _norm(v, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln", out)
    _linear(v, f"{src}/ffn/linear_0", f"{dst}.mlp.0", out)
    _linear(v, f"{src}/ffn/linear_1", f"{dst}.mlp.2", out)


def _layers(v: dict[str, Array], prefix: str) -> int:
    found = {int(m.group(1)) for n in v if (m := re.match(rf"{prefix}/layer_(\d+)/", n))}
    return max(found) + 1 if found else 0


def to_openai_whisper(variables: dict[str, Array]) -> tuple[dict[str, int], dict[str, Array]]:
    """Map CTranslate2 Whisper variables to openai-whisper's (dims, state dict)."""
    v: dict[str, Array] = variables
    sd: dict[str, Array] = {}
    for conv in ("conv1", "conv2"):
        _linear(v, f"encoder/{conv}", f"encoder.{conv}", sd)
    sd["encoder.positional_embedding"] = _float(v, "encoder/position_encodings/encodings")
    n_audio, n_text = _layers(v, "encoder"), _layers(v, "decoder")
    for i in range(n_audio):
        _block(v, f"encoder/layer_{i}", f"encoder.blocks.{i}", sd, cross=False)
    _norm(v, "encoder/layer_norm", "encoder.ln_post", sd)
    sd["decoder.token_embedding.weight"] = _float(v, "decoder/embeddings/weight")
    sd["decoder.positional_embedding"] = _float(v, "decoder/position_encodings/encodings")
    for i in range(n_text):
        _block(v, f"decoder/layer_{i}", f"decoder.blocks.{i}", sd, cross=True)
    _norm(v, "decoder/layer_norm", "decoder.ln", sd)
    dims = {
        "n_mels": int(sd["encoder.conv1.weight"].shape[1]),
        "n_audio_ctx": int(sd["encoder.positional_embedding"].shape[0]),
        "n_audio_state": int(sd["encoder.positional_embedding"].shape[1]),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_audio,
        "n_vocab": int(sd["decoder.token_embedding.weight"].shape[0]),
        "n_text_ctx": int(sd["decoder.positional_embedding"].shape[0]),
        "n_text_state": int(sd["decoder.positional_embedding"].shape[1]),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_text,
    }
    return dims, sd


def convert_ct2(model_dir: Path, out: Path) -> dict[str, int]:
    """Write `out` (.pt) from a CTranslate2 Whisper folder; returns the model dimensions."""
    model_bin = model_dir / "model.bin"
    if not model_bin.is_file():
        raise ConfigError(
            f"{model_dir}: no model.bin here; give a CTranslate2 Whisper model folder"
        )
    spec, variables = read_ct2(model_bin)
    if spec != "WhisperSpec":
        raise ConfigError(f"{model_bin}: a {spec} model, not Whisper")
    dims, state = to_openai_whisper(variables)
    try:
        import torch
    except ImportError as exc:
        raise ConfigError(
            "saving an openai-whisper checkpoint needs torch: "
            "pip install 'podcast-digest[openai-whisper]'"
        ) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in state.items()}
    tmp = out.with_name(out.name + ".tmp")
    torch.save({"dims": dims, "model_state_dict": tensors}, tmp)
    tmp.replace(out)
    return dims
