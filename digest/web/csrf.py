"""Forms' CSRF tokens (signed double submit) and the key that signs them.

A browser gets a random nonce in a SameSite cookie, signed by the server; every form
carries an HMAC of that nonce and the time. A page on another site can make the
browser post, but can neither read the cookie nor compute the HMAC, so its post is
refused. The cookie is signed too, so a nonce planted by someone who can set cookies
for this host (a sibling subdomain, a network attacker on plain HTTP) is not adopted:
the server replaces it with one of its own. Nothing is stored per visitor, and
several `digest web` processes sharing one key (from $DIGEST_WEB_SECRET) accept each
other's forms.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from pathlib import Path

from digest.core.statefiles import write_private_once

COOKIE = "digest_csrf"
SECURE_COOKIE = "__Host-digest_csrf"  # https: the browser binds it to this exact host
FIELD = "csrf_token"
MAX_AGE = 24 * 3600  # a form left open longer than a day must be reloaded
COOKIE_VALUE = re.compile(r"([A-Za-z0-9_-]{24})\.([0-9a-f]{32})")
TOKEN = re.compile(r"([0-9]{1,12})\.([0-9a-f]{40})")  # ASCII digits only: no `int("١٢")`


def cookie_name(base_url: str) -> str:
    """`__Host-` when the site is served over https, so no subdomain can overwrite it."""
    return SECURE_COOKIE if base_url.startswith("https:") else COOKIE


def load_key(configured: str, state_dir: Path) -> bytes:
    """$DIGEST_WEB_SECRET, else a random key kept in <state_dir>/web-secret (mode 600)."""
    if configured:
        return configured.encode()
    path = state_dir / "web-secret"
    write_private_once(path, secrets.token_urlsafe(32).encode())
    return path.read_text().strip().encode()


def _sign(key: bytes, label: str, length: int) -> str:
    return hmac.new(key, label.encode(), hashlib.sha256).hexdigest()[:length]


def new_cookie(key: bytes) -> tuple[str, str]:
    """A fresh (nonce, cookie value): the value is the nonce and the server's signature."""
    nonce = secrets.token_urlsafe(18)
    return nonce, f"{nonce}.{_sign(key, f'cookie|{nonce}', 32)}"


def cookie_nonce(key: bytes, value: str | None) -> str | None:
    """The nonce of a cookie this server issued; None for anything else."""
    match = COOKIE_VALUE.fullmatch(value or "")
    if not match:
        return None
    nonce, mac = match.groups()
    return nonce if hmac.compare_digest(mac, _sign(key, f"cookie|{nonce}", 32)) else None


def token_for(key: bytes, nonce: str, now: float) -> str:
    issued = int(now)
    return f"{issued}.{_sign(key, f'csrf|{nonce}|{issued}', 40)}"


def check(key: bytes, cookie: str | None, token: str | None, now: float) -> bool:
    """True if `token` was issued within the last day for the nonce of this server's
    cookie `cookie`."""
    nonce = cookie_nonce(key, cookie)
    match = TOKEN.fullmatch(token or "")
    if nonce is None or match is None:
        return False
    issued, mac = int(match.group(1)), match.group(2)
    if not 0 <= now - issued <= MAX_AGE:
        return False
    return hmac.compare_digest(mac, _sign(key, f"csrf|{nonce}|{issued}", 40))


def client_key(key: bytes, address: str) -> str:
    """What the rate limits remember of a client: a keyed hash, not the address. An IPv6
    client is its /64 (one customer's network: an ISP hands out at least that much)."""
    return _sign(key, f"client|{client_network(address)}", 32)


def client_network(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)
