"""`[extraction] backend = "local"`: a GGUF instruct model run in this process by
llama.cpp (the `xllamacpp` wheel, extra `local`), so no Ollama or hosted API is needed.

llama.cpp's own OpenAI-compatible server is started on a loopback port for the
life of the process, and extraction talks to it through the same `openai` client as
any hosted endpoint: one code path, so the prompt, the JSON schema, grounding, the
cache and token accounting are the same as for OpenAI.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from digest.core.config import Config
from digest.core.errors import ConfigError
from digest.insights.backends.chat import ChatBackend
from digest.insights.prompts import load_prompt

GGUF_MAGIC = b"GGUF"
_lock = threading.Lock()
_servers: dict[tuple[str, int, int], tuple[Any, str]] = {}


def check_model(model: str) -> Path:
    """The model file, or a one-line error naming the path and what is wrong."""
    path = Path(model).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"[extraction] model {model!r}: no such file; the local backend needs the path "
            "of a GGUF model file"
        )
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ConfigError(f"[extraction] model {model!r}: cannot read it ({exc.strerror})") from exc
    if magic != GGUF_MAGIC:
        raise ConfigError(f"[extraction] model {model!r}: not a GGUF file (llama.cpp reads GGUF)")
    return path.resolve()


def default_threads() -> int:
    """Half the cores, at least one: generation is memory-bound, and the machine has
    other work (Whisper, the web); more threads on a busy machine only wait on each other."""
    return max(1, (os.cpu_count() or 2) // 2)


def local_base_url(model: str, threads: int = 0, context: int = 8192) -> str:
    """The `/v1` URL of a llama.cpp server for this model, started on first use."""
    path = check_model(model)
    threads = threads or default_threads()
    key = (str(path), threads, context)
    with _lock:
        if key not in _servers:
            _servers[key] = _start(path, threads, context)
        return _servers[key][1]


def _start(path: Path, threads: int, context: int) -> tuple[Any, str]:
    try:
        import xllamacpp
    except ImportError as exc:
        raise ConfigError(
            'backend = "local" needs llama.cpp: pip install "podcast-digest[local]"'
        ) from exc
    # OpenMP's default busy-waiting made llama.cpp ~15x slower on a busy 2-core machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = context
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.port = _free_port()
    params.hostnames = ["127.0.0.1"]  # loopback only: nothing outside may use the model
    server = xllamacpp.Server(params)
    return server, f"http://127.0.0.1:{params.port}/v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBackend(ChatBackend):
    """The chat backend, against llama.cpp started in this process for the model file."""

    name = "local"

    @classmethod
    def build(
        cls,
        config: Config,
        prompt: str | None = None,
        client: Any = None,
        throttle: Callable[[], None] | None = None,
    ) -> ChatBackend:
        e = config.extraction
        base_url = local_base_url(e.model, e.local_threads, e.local_context)
        loaded = load_prompt(prompt or e.prompt, e.prompts_dir)
        return cls.over(config, loaded, base_url, client, throttle)
