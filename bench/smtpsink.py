"""A loopback SMTP server (aiosmtpd) in its own process that keeps only what the delivery
benchmark checks: who got a message and its Message-ID. It can drop the connection once
after N messages, like a server restarting mid-batch.

    python -m bench.smtpsink        # prints its port; stdin: "stats", "drop-after N", EOF
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from typing import Any

from tests.support.smtpserver import Mailbox, SmtpServer

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


class Sink(Mailbox):
    """Counts instead of keeping 10,000 parsed messages in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.received: Counter[str] = Counter()  # recipient -> messages
        self.ids: set[bytes] = set()
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            self.received[rcpt] += 1
        found = MESSAGE_ID.search(envelope.content)
        if found:
            self.ids.add(found.group(1))
        self.count += 1
        self.messages.append(None)  # type: ignore[arg-type]  # Mailbox counts these for hang-ups
        return "250 2.0.0 accepted"


def main() -> None:
    sink = Sink()
    server = SmtpServer(sink)
    print(server.port, flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[:1] == ["drop-after"]:
            sink.hang_up_after, sink.hang_ups_left = sink.count + int(command[1]), 1
        elif command[:1] == ["reset"]:
            sink.received.clear()
            sink.ids.clear()
            sink.hang_up_after = None
            sink.connections = sink.hang_ups = 0
        stats = {
            "messages": sum(sink.received.values()),
            "recipients": len(sink.received),
            "doubled": sum(1 for n in sink.received.values() if n > 1),
            "message_ids": len(sink.ids),
            "connections": sink.connections,
            "hang_ups": sink.hang_ups,
        }
        print(json.dumps(stats), flush=True)
    server.stop(hold_port=False)


if __name__ == "__main__":
    main()
