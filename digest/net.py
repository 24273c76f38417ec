"""The one guarded HTTP client that feeds and media downloads share.

Everything fetched comes from URLs strangers wrote (feeds, enclosures, redirects),
so every hop is checked: http/https only, no private or loopback targets unless
allowed (checked on the resolved addresses before connecting *and* on the peer
actually connected, which defeats DNS rebinding), a redirect limit, a loop check,
a size cap and a whole-request deadline that a trickling server cannot stretch.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from digest import __version__
from digest.errors import BlockedURL, FetchError, TooLarge

USER_AGENT = (
    f"podcast-digest/{__version__} (feed reader; +https://pypi.org/project/podcast-digest/)"
)
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
ALLOWED_SCHEMES = frozenset({"http", "https"})


def is_local(url: str) -> bool:
    """Operators may add a feed file on disk (file:// URL); only they, never a feed, can."""
    return urlsplit(url).scheme == "file"


def local_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def check_scheme(url: str) -> None:
    """Refuse anything but http(s): file://, ftp://, javascript: and friends."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise BlockedURL(f"{url}: only http:// and https:// URLs can be fetched")


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _refusal(url: str, address: str) -> BlockedURL:
    return BlockedURL(
        f"{url}: refused, it resolves to the private or local address {address} "
        "(set [feeds] allow_private_addresses = true to allow it)"
    )


def check_public_host(url: str) -> None:
    """Resolve the URL's host and refuse it if any address is not public."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"{url}: cannot resolve host {host!r}: {exc}", retryable=True) from exc
    for info in infos:
        address = str(info[4][0])
        if not _is_public(address):
            raise _refusal(url, address)


class GuardedClient:
    """An httpx client that follows redirects itself so it can vet every hop."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float,
        max_redirects: int = 10,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.max_redirects = max_redirects
        self._client = httpx.Client(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": user_agent},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GuardedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, url: str) -> None:
        check_scheme(url)
        if not self.allow_private:
            check_public_host(url)

    def _check_peer(self, url: str, response: httpx.Response) -> None:
        if self.allow_private:
            return
        stream = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if peer and not _is_public(str(peer[0])):
            raise _refusal(url, str(peer[0]))

    @contextmanager
    def stream(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """GET `url`, following vetted redirects; yields the final response unread."""
        seen: set[str] = set()
        current = url
        for _ in range(self.max_redirects + 1):
            self._check(current)
            seen.add(current)
            try:
                with self._client.stream("GET", current, headers=dict(headers or {})) as response:
                    self._check_peer(current, response)
                    location = response.headers.get("location")
                    if response.status_code in REDIRECT_CODES and location:
                        current = urljoin(current, location.strip())
                        if current in seen:
                            raise FetchError(f"{url}: redirect loop at {current}")
                        continue
                    yield response
                    return
            except httpx.TimeoutException as exc:
                raise FetchError(
                    f"{current}: timed out after {self.timeout:g} s", retryable=True
                ) from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"{current}: {type(exc).__name__}: {exc}", retryable=True) from exc
        raise FetchError(f"{url}: more than {self.max_redirects} redirects")


def iter_capped(
    response: httpx.Response, *, max_bytes: int, deadline: float, url: str, already: int = 0
) -> Iterator[bytes]:
    """Yield the body as it arrives (a dropped connection loses nothing already yielded),
    failing once it passes `max_bytes` (counting `already` held bytes) or the deadline."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and already + int(declared) > max_bytes:
        raise TooLarge(
            f"{url}: {already + int(declared):,} bytes is over the {max_bytes:,}-byte limit"
        )
    size = already
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"{url}: more than the {max_bytes:,}-byte limit")
            if time.monotonic() > deadline:
                raise FetchError(f"{url}: still sending at the deadline; gave up", retryable=True)
            yield chunk
    except httpx.TimeoutException as exc:
        raise FetchError(f"{url}: timed out after {size:,} bytes", retryable=True) from exc
    except httpx.HTTPError as exc:
        lost = f"{url}: connection lost after {size:,} bytes ({exc})"
        raise FetchError(lost, retryable=True) from exc


def read_capped(response: httpx.Response, *, max_bytes: int, deadline: float, url: str) -> bytes:
    """The whole body, within `max_bytes` and the deadline."""
    return b"".join(iter_capped(response, max_bytes=max_bytes, deadline=deadline, url=url))


# Statuses that say "not now" rather than "no": the server is overloaded, restarting
# or rate-limiting us, so the same request may succeed in a few seconds.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def raise_for_status(response: httpx.Response, url: str) -> None:
    """Turn 4xx/5xx into a FetchError naming the URL and the status."""
    if response.status_code >= 400:
        reason = response.reason_phrase or ""
        raise FetchError(
            f"{url}: HTTP {response.status_code} {reason}".rstrip(),
            retryable=response.status_code in RETRYABLE_STATUS,
        )
