"""The Whisper worker process: engines run here, never in the pipeline's own process.

A timeout really stops it (the parent kills the child), a crash inside CTranslate2
or torch fails one episode instead of the pipeline, and the model is loaded once
per worker and reused for every later episode. It is a plain
`python -m digest.transcripts.worker` child speaking JSON lines, so it needs nothing
from the caller's main module (unlike multiprocessing's spawn).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from digest.core.errors import DigestError, TranscriptError
from digest.core.models import Transcript
from digest.transcripts.engines import Engine, EngineOptions, Progress, from_request, request
from digest.transcripts.windows import transcribe_file


def _serve(requests: IO[str], replies: IO[str]) -> None:
    """Worker loop: keep one engine loaded, answer each JSON-line request with JSON lines."""
    engines: dict[EngineOptions, Engine] = {}

    def send(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    for line in requests:
        asked = json.loads(line)
        kind, options = from_request(asked)
        try:
            if options not in engines:
                engines.clear()
                engines[options] = kind(options)
            transcript = transcribe_file(
                Path(asked["path"]), options, engines[options], lambda t: send({"progress": t})
            )
            send({"done": transcript.to_dict()})
        except DigestError as exc:
            send({"error": str(exc)})
        except Exception as exc:  # an engine bug must reach the parent as a message
            send({"error": f"{options.engine} failed: {type(exc).__name__}: {exc}"})


class WhisperWorker:
    """A worker process that outlives one episode (the model loads once) but not a timeout."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one request at a time on the pipe

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            # Unbuffered: select() watches the fd, so no reply may hide in a Python buffer.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "digest.transcripts.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                bufsize=0,
            )
        return self._process

    def transcribe(
        self,
        path: Path,
        options: EngineOptions,
        *,
        timeout: float,
        progress: Progress | None = None,
    ) -> Transcript:
        with self._lock:
            return self._transcribe(path, options, timeout, progress)

    def _transcribe(
        self, path: Path, options: EngineOptions, timeout: float, progress: Progress | None
    ) -> Transcript:
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        try:
            asked = {"path": str(path), **request(options)}
            process.stdin.write(json.dumps(asked).encode() + b"\n")
        except OSError:
            return self._crashed(path)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise TranscriptError(
                    f"{path.name}: transcription stopped after the {timeout:g} s timeout"
                )
            ready, _, _ = select.select([process.stdout], [], [], min(remaining, 1.0))
            if not ready:
                continue
            line = process.stdout.readline()
            if not line:
                return self._crashed(path)
            message = json.loads(line)
            if "progress" in message:
                if progress:
                    progress(float(message["progress"]))
            elif "done" in message:
                return Transcript.from_dict(message["done"])
            else:
                raise TranscriptError(f"{path.name}: {message['error']}")

    def _crashed(self, path: Path) -> Transcript:
        code = self._process.wait(5) if self._process else None
        self._process = None
        raise TranscriptError(f"{path.name}: the transcription process died (exit code {code})")

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)
        self._process = None

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None and self._process.stdin:
            try:
                self._process.stdin.close()  # EOF: the worker's loop ends
                self._process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def __enter__(self) -> WhisperWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    """Worker entry point: protocol on the real stdout, library chatter sent to stderr."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _serve(sys.stdin, protocol)


if __name__ == "__main__":
    main()
