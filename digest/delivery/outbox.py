"""The outbox: with no SMTP host configured, each message becomes
`<state>/outbox/<folder>/<address>.eml`, readable in any mail client, private to the
user that runs digest."""

from __future__ import annotations

from pathlib import Path

from digest.core.addresses import ascii_address
from digest.core.statefiles import write_private
from digest.delivery.message import Outgoing


class OutboxTransport:
    """No SMTP host configured: each message becomes `<outbox>/<date>/<address>.eml`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[Path] = []

    def send(self, message: Outgoing) -> None:
        path = self.folder / outbox_name(message.recipient)
        write_private(path, message.data)  # readers' addresses and tokens: 0600
        self.written.append(path)

    def close(self) -> None:
        pass


def outbox_name(recipient: str) -> str:
    """The file a message to `recipient` is written to, in any outbox folder."""
    return "".join(c if c.isalnum() or c in "@.-_" else "_" for c in recipient) + ".eml"


def forget_outbox(outbox: Path, address: str) -> int:
    """Delete every outbox message to `address` (a subscriber removed); how many."""
    name = outbox_name(ascii_address(address)).casefold()  # any spelling of the mailbox
    found = [p for p in outbox.glob("*/*.eml") if p.name.casefold() == name]
    for path in found:
        path.unlink()
    return len(found)
