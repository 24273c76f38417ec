"""Whisper's temperature fallback, made reproducible.

When a 30-second window decodes to text that is too repetitive (compression ratio
above 2.4) or too unsure (average log-probability under -1), faster-whisper decodes
it again, sampling at rising temperatures (0.2, 0.4, ... 1.0). CTranslate2 samples
from per-thread random generators that no call can seed, so a file that needs the
fallback came out differently run after run: one benchmark clip gave three
transcripts in three runs (37-46 % WER, 7-19 s). Each fallback step here is beam
search with a repetition penalty that rises with the temperature (1.1 at 0.2 up to
1.5 at 1.0): it works on the loops the fallback exists for, and the same audio always
gives the same text. On the benchmark's 14 clips it was as accurate as sampling
(docs/benchmarks.md); windows that need no fallback decode exactly as before.
"""

from __future__ import annotations

import threading
from typing import Any


class ReproducibleFallback:
    """Stands in for faster-whisper's CTranslate2 model (`WhisperModel.model`): passes
    every call through, turning a sampling `generate` into deterministic beam search."""

    def __init__(self, model: Any, beam_size: int) -> None:
        self._model = model
        self._beam_size = max(1, beam_size)
        self._lock = threading.Lock()
        self.fallbacks = 0  # windows decoded again: how often the fallback was needed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        temperature = kwargs.pop("sampling_temperature", 0.0)
        if kwargs.get("sampling_topk", 1) != 1 and temperature > 0:
            kwargs.pop("sampling_topk")
            kwargs.pop("num_hypotheses", None)  # best_of samples; beam search keeps one
            kwargs["beam_size"] = self._beam_size
            penalty = kwargs.get("repetition_penalty", 1.0)
            kwargs["repetition_penalty"] = max(penalty, 1.0 + temperature / 2)
            with self._lock:
                self.fallbacks += 1
        return self._model.generate(*args, **kwargs)
