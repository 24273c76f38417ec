"""The one guarded HTTP client that every fetch shares: feeds, enclosures, publisher
transcripts, chapters.

Everything fetched comes from URLs strangers wrote (feeds, enclosures, redirects),
so every hop is checked: http/https only, a redirect limit, a loop check, a size cap
and a whole-request deadline that a trickling server cannot stretch, and no private
or loopback targets unless allowed. The address check is made where the connection
is made: the host is resolved once, every address it has is vetted, and the socket
connects to a vetted address (TLS and the Host header still name the host). A name
that answers a public address to one lookup and a private one to the next (DNS
rebinding) therefore never gets a second lookup to lie in.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpcore
import httpx

from digest import __version__
from digest.core.errors import BlockedURL, FetchError, TooLarge

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


class _Refused(Exception):
    """Raised inside the connection pool; the client turns it into a BlockedURL or a
    FetchError that names the URL."""

    def __init__(self, host: str, address: str | None, error: Exception | None = None) -> None:
        super().__init__(host)
        self.host, self.address, self.error = host, address, error


def public_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, all of them public; else _Refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _Refused(host, None, exc) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        if not _is_public(address):
            raise _Refused(host, address)
    return addresses


def check_public_host(url: str) -> None:
    """Resolve the URL's host and refuse it if any address is not public."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        public_addresses(parts.hostname or "", port)
    except _Refused as refused:
        raise _as_error(url, refused) from refused.error


def _as_error(url: str, refused: _Refused) -> FetchError:
    if refused.address is None:
        return FetchError(
            f"{url}: cannot resolve host {refused.host!r}: {refused.error}", retryable=True
        )
    return _refusal(url, refused.address)


class VettedBackend(httpcore.SyncBackend):
    """Connects only to addresses it vetted itself: one lookup per connection, and the
    socket goes to what that lookup answered (never a second resolution)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in public_addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next address, as a resolver-driven connect would
        assert failure is not None  # public_addresses() refuses an empty answer
        raise failure


class VettedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose sockets VettedBackend opens."""

    def __init__(self) -> None:
        super().__init__(trust_env=False)  # a proxy would be the vetted peer, not the host
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=VettedBackend()
        )


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
            transport=None if allow_private else VettedTransport(),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GuardedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def stream(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """GET `url`, following vetted redirects; yields the final response unread."""
        seen: set[str] = set()
        current = url
        for _ in range(self.max_redirects + 1):
            check_scheme(current)  # the address is vetted as the connection is made
            seen.add(current)
            try:
                with self._client.stream("GET", current, headers=dict(headers or {})) as response:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECT_CODES and location:
                        current = urljoin(current, location.strip())
                        if current in seen:
                            raise FetchError(f"{url}: redirect loop at {current}")
                        continue
                    yield response
                    return
            except _Refused as refused:
                raise _as_error(current, refused) from refused.error
            except httpx.TimeoutException as exc:
                raise FetchError(
                    f"{current}: timed out after {self.timeout:g} s", retryable=True
                ) from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"{current}: {type(exc).__name__}: {exc}", retryable=True) from exc
        raise FetchError(f"{url}: more than {self.max_redirects} redirects")

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, max_answer: int = 65536
    ) -> tuple[int, str]:
        """POST `body` to `url` once, following no redirect (a POST that moved is the
        sender's to fix); the status and the start of the answer. A connection that
        fails or times out is a retryable FetchError."""
        check_scheme(url)
        try:
            with self._client.stream("POST", url, content=body, headers=dict(headers)) as answer:
                text = b"".join(
                    iter_capped(
                        answer,
                        max_bytes=max_answer,
                        deadline=time.monotonic() + self.timeout,
                        url=url,
                    )
                )
                return answer.status_code, text[:500].decode("utf-8", "replace")
        except TooLarge:
            return answer.status_code, ""  # an answer too long to read still answered
        except _Refused as refused:
            raise _as_error(url, refused) from refused.error
        except httpx.TimeoutException as exc:
            raise FetchError(f"{url}: timed out after {self.timeout:g} s", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}", retryable=True) from exc


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
