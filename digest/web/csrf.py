"""Forms' CSRF tokens (signed double submit) and the key that signs them.

A browser gets a random nonce in a SameSite cookie; every form carries an HMAC of
that nonce and the time. A page on another site can make the browser post, but can
neither read the cookie nor compute the HMAC, so its post is refused. Nothing is
stored per visitor, and several `digest web` processes sharing one key (from
$DIGEST_WEB_SECRET) accept each other's forms.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

COOKIE = "digest_csrf"
FIELD = "csrf_token"
MAX_AGE = 24 * 3600  # a form left open longer than a day must be reloaded


def load_key(configured: str, state_dir: Path) -> bytes:
    """$DIGEST_WEB_SECRET, else a random key kept in <state_dir>/web-secret (mode 600)."""
    if configured:
        return configured.encode()
    path = state_dir / "web-secret"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def _mac(key: bytes, nonce: str, issued: int) -> str:
    return hmac.new(key, f"csrf|{nonce}|{issued}".encode(), hashlib.sha256).hexdigest()[:40]


def token_for(key: bytes, nonce: str, now: float) -> str:
    issued = int(now)
    return f"{issued}.{_mac(key, nonce, issued)}"


def check(key: bytes, nonce: str | None, token: str | None, now: float) -> bool:
    """True if `token` was issued for this cookie's `nonce` within the last day."""
    if not nonce or not token or "." not in token:
        return False
    issued_text, mac = token.split(".", 1)
    if not issued_text.isdigit() or not 0 <= now - int(issued_text) <= MAX_AGE:
        return False
    return hmac.compare_digest(mac, _mac(key, nonce, int(issued_text)))


def client_key(key: bytes, address: str) -> str:
    """What the rate limits remember of a client IP: a keyed hash, not the address."""
    return hmac.new(key, f"client|{address}".encode(), hashlib.sha256).hexdigest()[:32]
