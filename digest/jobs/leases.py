"""Leases: one worker at a time on an episode, one sender at a time, across machines.

A claim (a row in the state database, `store.claims`) is taken before the work and
renewed by a thread while it goes on, every third of the lease; a holder that is
killed stops renewing and the lease runs out, so another worker takes the work over.
The per-machine run lock (`digest.core.runlock`) cannot do this: workers on different
machines share only the database.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest.core.clock import utcnow
from digest.core.errors import DigestError
from digest.store import Store

log = logging.getLogger("digest.leases")
WORKER_NAME_ENV = "DIGEST_WORKER_NAME"


class Claimed(DigestError):
    """Another worker holds the claim: the work is being done, not failed."""


def owner_id() -> str:
    """`<machine>:<pid>`; the machine is `$DIGEST_WORKER_NAME` when set (containers that
    share a host name), else the host name."""
    machine = os.environ.get(WORKER_NAME_ENV) or socket.gethostname()
    return f"{machine}:{os.getpid()}"


def holder_id() -> str:
    """`<machine>:<pid>/<token>`: one holder, so that two runs in one process (threads)
    do not share a claim."""
    return f"{owner_id()}/{secrets.token_hex(4)}"


def dead_here(owner: str) -> bool:
    """True when `owner` is a process of this machine that no longer exists: its claim
    need not wait for the lease (a `digest run` killed and started again)."""
    machine, _, pid = owner.partition("/")[0].rpartition(":")
    if machine != owner_id().rpartition(":")[0] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Leases:
    store: Store
    lease_seconds: float
    owner: str = field(default_factory=holder_id)
    clock: Callable[[], datetime] = utcnow  # what time it is (tests move it on)

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        """Hold the claim `name` for the duration, or raise Claimed naming the holder."""
        now = self.clock()
        lease = timedelta(seconds=self.lease_seconds)
        holder = self.store.claims.take(name, self.owner, now, now + lease, dead=dead_here)
        if holder is not None:
            raise Claimed(
                f"{name} is being worked on by {holder.owner} "
                f"(lease until {holder.expires_at:%H:%M:%S} UTC)"
            )
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew, args=(name, lease, stop), name=f"lease {name}", daemon=True
        )
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            self.store.claims.release(name, self.owner)

    def _renew(self, name: str, lease: timedelta, stop: threading.Event) -> None:
        while not stop.wait(self.lease_seconds / 3):
            try:
                if not self.store.claims.renew(name, self.owner, self.clock() + lease):
                    log.warning("lost the claim on %s: its lease ran out", name)
                    return
            except Exception as exc:  # the database may be restarting: try again later
                log.warning("could not renew the claim on %s: %s", name, exc)

    @contextmanager
    def episode(self, episode_id: str) -> Iterator[None]:
        """Claim an episode and count the run (the count keys a deployed run)."""
        with self.hold(f"episode:{episode_id}"):
            self.store.episodes.count_run(episode_id)
            yield
