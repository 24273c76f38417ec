"""An OpenAI-compatible HTTP server on 127.0.0.1 that speaks the real wire format.

The official `openai` client talks to it through `base_url`. Tests script its
misbehaviour (429 with Retry-After, 500, slow answers, malformed JSON) by queueing
`Reply` objects; when the queue is empty a handler computes a normal answer.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None  # chat requests
    form: dict[str, Any]  # multipart fields (files as bytes)


Handler = Callable[[Call], Reply]


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


def transcription_handler(call: Call) -> Reply:
    """verbose_json with a segment every 5 s of the uploaded window: offsets are checkable."""
    seconds = wav_seconds(call.form["file"])
    starts = [float(t) for t in range(0, int(seconds) + 1, 5) if t < seconds]
    segments = [
        {
            "id": i,
            "start": s,
            "end": min(s + 5, seconds),
            "text": f" words at {s:g} of {seconds:.1f}",
        }
        for i, s in enumerate(starts)
    ]
    if call.form.get("response_format") == "json":
        return Reply(body={"text": " ".join(s["text"] for s in segments)})
    return Reply(
        body={
            "task": "transcribe",
            "language": "english",
            "duration": seconds,
            "text": "".join(s["text"] for s in segments),
            "segments": segments,
        }
    )


LINE = re.compile(r"^\[(\d\d):(\d\d):(\d\d)\] (.+)$", re.MULTILINE)


def chat_reply(content: str, prompt_chars: int) -> Reply:
    """A Chat Completions response carrying `content`, with plausible token usage."""
    return Reply(
        body={
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "fake-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt_chars // 4 + len(content) // 4,
            },
        }
    )


def prompt_of(call: Call) -> str:
    assert call.json is not None
    return "\n".join(m["content"] for m in call.json["messages"])


def transcript_lines(call: Call) -> list[tuple[float, str]]:
    """The [hh:mm:ss] lines between the transcript fences of the user message."""
    user = call.json["messages"][-1]["content"] if call.json else ""
    fenced = user.split("<transcript>", 1)[-1].split("</transcript>", 1)[0]
    return [(int(h) * 3600 + int(m) * 60 + int(s), text) for h, m, s, text in LINE.findall(fenced)]


def insights_answer(call: Call) -> str:
    """A well-behaved model: the longest transcript lines, quoted verbatim, as insights."""
    lines = sorted(transcript_lines(call), key=lambda line: (-len(line[1].split()), line[0]))
    # Like a real model: a passage of the line (its first 12-40 words), not a whole page.
    chosen = [
        (start, " ".join(text.split()[:40])) for start, text in lines if len(text.split()) >= 12
    ][:3]
    return json.dumps(
        {
            "insights": [
                {
                    "text": f"The guest argues that {text[0].lower()}{text[1:]}",
                    "quote": text,
                    "start": start,
                    "importance": 9 - n,
                }
                for n, (start, text) in enumerate(chosen)
            ]
        }
    )


def editor_request(call: Call) -> bool:
    """The day's editor pass, known by the answer schema it asks for."""
    schema = ((call.json or {}).get("response_format") or {}).get("json_schema") or {}
    return schema.get("name") == "editor"


def editor_answer(call: Call) -> str:
    """An editor that keeps the day's ranking: the first N candidates, in order."""
    count = call.json["response_format"]["json_schema"]["schema"]["properties"]["picks"]["maxItems"]  # type: ignore[index]
    shown = re.findall(r"^\[(\d+)\] ", call.json["messages"][-1]["content"], re.M)  # type: ignore[index]
    picks = [int(n) for n in shown][:count]
    return json.dumps({"header": "Five ideas worth your morning.", "picks": picks})


def chat_handler(call: Call) -> Reply:
    if editor_request(call):
        return chat_reply(editor_answer(call), len(prompt_of(call)))
    return chat_reply(insights_answer(call), len(prompt_of(call)))


class FakeOpenAI:
    def __init__(self) -> None:
        self.queue: list[Reply | Handler] = []  # served first, in order; then the handlers
        self.calls: list[Call] = []
        self.handlers: dict[str, Handler] = {
            "/v1/audio/transcriptions": transcription_handler,
            "/v1/chat/completions": chat_handler,
        }
        self._lock = threading.Lock()
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                server._handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the default 5 drops SYNs under concurrent clients

            def handle_error(self, request: object, client_address: object) -> None:
                pass

        self.httpd = Server(("127.0.0.1", 0), RequestHandler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def calls_to(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length", "0"))
        raw = h.rfile.read(length)
        kind = h.headers.get("Content-Type", "")
        call = Call(h.path, {k.lower(): v for k, v in h.headers.items()}, None, {})
        if kind.startswith("application/json"):
            call.json = json.loads(raw)
        elif kind.startswith("multipart/form-data"):
            call.form = _multipart(kind, raw)
        with self._lock:
            self.calls.append(call)
            reply = self.queue.pop(0) if self.queue else None
        if callable(reply):
            reply = reply(call)
        if reply is None:
            handler = self.handlers.get(h.path)
            reply = (
                handler(call) if handler else Reply(404, {"error": {"message": "no such route"}})
            )
        if reply.delay:
            time.sleep(reply.delay)
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            for name, value in reply.headers.items():
                h.send_header(name, value)
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out first, as the test intended


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    message = BytesParser(policy=email_policy).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[str(name)] = payload if part.get_filename() else payload.decode()
    return fields
