"""The loopback OpenAI-compatible server in its own process, keeping its own time.

Prints its base URL; each line on stdin asks for a JSON line of statistics (calls,
tokens in the requests, seconds spent inside the server); EOF stops it.

    python -m bench.llmserver
"""

from __future__ import annotations

import json
import sys
import threading
import time

from digest.insights.proposals import CHARS_PER_TOKEN
from tests.support.fake_openai import Call, FakeOpenAI, Reply, chat_handler, prompt_of


def main() -> None:
    fake = FakeOpenAI()
    stats = {"calls": 0, "prompt_tokens": 0, "server_s": 0.0}
    lock = threading.Lock()

    def timed(call: Call) -> Reply:
        start = time.perf_counter()
        reply = chat_handler(call)
        with lock:
            stats["calls"] += 1
            stats["prompt_tokens"] += len(prompt_of(call)) // CHARS_PER_TOKEN
            stats["server_s"] += time.perf_counter() - start
        return reply

    fake.handlers["/v1/chat/completions"] = timed
    print(fake.base_url, flush=True)
    for _line in sys.stdin:
        with lock:
            print(json.dumps(stats), flush=True)
    fake.close()


if __name__ == "__main__":
    main()
