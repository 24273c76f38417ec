"""A loopback webhook receiver in its own process for the delivery benchmark: it
answers 200 to every POST and counts deliveries and delivery ids.

    python -m bench.hooksink        # prints its port; stdin: "stats", "reset", EOF
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

received: Counter[str] = Counter()  # delivery id -> POSTs
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per sender thread

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            received[self.headers.get("X-Digest-Delivery", "")] += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    for line in sys.stdin:
        if line.strip() == "reset":
            with lock:
                received.clear()
        with lock:
            stats = {
                "posts": sum(received.values()),
                "ids": len(received),
                "doubled": sum(1 for n in received.values() if n > 1),
            }
        print(json.dumps(stats), flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
