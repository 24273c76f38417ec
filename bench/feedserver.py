"""A loopback feed server in its own process, so serving never competes with polling
for the benchmark process's GIL. Prints its port, serves until stdin closes.

    python -m bench.feedserver N_FEEDS
"""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape

from tests.support.httpserver import LoopbackServer, Route

ITEMS = 60  # with ~3 KB of show notes each: a realistic ~200 KB podcast feed
NOTES = (
    "In this episode we talk about how small teams ship reliable software, what the "
    "research on code review says, and why the boring parts of operations matter. "
)


def feed_xml(n: int, now: datetime) -> bytes:
    """Feed number `n`: a show with ITEMS episodes, one new a day, long HTML show notes."""
    items = []
    for i in range(ITEMS):
        published = format_datetime(now - timedelta(days=i, hours=n % 24))
        notes = escape(f"<p>{NOTES * 18}</p><ul><li>Chapter {i}</li></ul>")
        items.append(
            f"<item><title>Show {n} episode {ITEMS - i}: reliability, review and ops</title>"
            f"<guid isPermaLink='false'>show-{n}-ep-{ITEMS - i}</guid>"
            f"<pubDate>{published}</pubDate><itunes:duration>01:02:03</itunes:duration>"
            f"<enclosure url='https://cdn.example/{n}/{i}.mp3' length='59000000' "
            f"type='audio/mpeg'/><description>{notes}</description></item>"
        )
    return (
        "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0' "
        "xmlns:itunes='http://www.itunes.com/dtds/podcast-1.0.dtd'><channel>"
        f"<title>Benchmark show {n}</title><link>https://show.example/{n}</link>"
        f"<description>Show {n}</description>{''.join(items)}</channel></rss>"
    ).encode()


def serve(count: int) -> LoopbackServer:
    """One route per feed; every 20 feeds: one 500, one 404 and one permanent redirect."""
    server = LoopbackServer()
    now = datetime.now(UTC)
    for n in range(count):
        path = f"/feed/{n}"
        if n % 20 == 0:
            server.routes[path] = Route(b"internal error", status=500, content_type="text/plain")
            continue
        elif n % 20 == 1:
            server.routes[path] = Route(redirect=server.url(f"/moved/{n}"))
            path = f"/moved/{n}"
        elif n % 20 == 2:
            continue  # 404: the server has no such route
        body = feed_xml(n, now)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        server.routes[path] = Route(body, etag=etag)
    return server


def main() -> None:
    server = serve(int(sys.argv[1]))
    sizes = [len(r.body) for r in server.routes.values() if r.status == 200 and r.body]
    print(server.port, sum(sizes) // max(1, len(sizes)), flush=True)
    for _line in sys.stdin:  # "bytes" asks for the transfer count; EOF stops the server
        print(server.bytes_sent, flush=True)
    server.close()


if __name__ == "__main__":
    main()
