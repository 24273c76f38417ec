"""Whisper's encoder on every core the engine may use, while one window decodes alone.

A file shorter than one window (most short clips, and the last window of every
episode) is decoded by one thread: a decoder step is a few small matrix products,
and a second thread made each step slower, not faster (3.3 s → 6.3 s of decoding
for the benchmark's quick clip). The encoder runs once per 30 seconds of speech on
large products that two threads finish in half the time (tiny.en: 0.29 → 0.145 s),
and its output is the same to the bit (compared on 17 inputs: int8 sums are exact,
and no reduction is split between threads). So a second CTranslate2 replica of the
model, with all the engine's threads, encodes whenever no other window of this
engine is decoding; with several windows in flight every core already has a
decoder, and the one-thread replica encodes. Measured: 4.9 → 4.5 s for that clip
(docs/benchmarks.md), the same text.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class SharedCoresEncoder:
    """Stands in for faster-whisper's CTranslate2 model (`WhisperModel.model`): passes
    every call through, and encodes on the wide replica when one window is in flight."""

    def __init__(self, model: Any, wide: Any) -> None:
        self._model = model
        self._wide = wide
        self._lock = threading.Lock()
        self._decoding = 0  # windows of this engine in flight
        self.wide_encodes = 0  # for reports and tests: how often all cores encoded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    @contextmanager
    def window(self) -> Iterator[None]:
        """Held while one window is transcribed."""
        with self._lock:
            self._decoding += 1
        try:
            yield
        finally:
            with self._lock:
                self._decoding -= 1

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            alone = self._decoding <= 1
            self.wide_encodes += alone
        return (self._wide if alone else self._model).encode(*args, **kwargs)
