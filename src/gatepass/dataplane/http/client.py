"""The data plane's upstream client: :class:`UpstreamPool`, keep-alive connections per :class:`Origin`.

::

    pool = UpstreamPool()
    origin = Origin.parse("https://api.anthropic.com")
    response = await pool.request(origin, "POST", b"/v1/messages", headers, body)
    async for chunk in response:   # or: await response.read()
        ...

The pool adds ``host`` (when absent) and ``content-length``; the caller gives every other header
(it decides which of the agent's headers go upstream). No redirect is followed and no body is
decompressed: a 3xx, like any status, is returned as a response, and bodies pass as received.

Retry rule: a request is sent again, once, on a fresh connection only when it cannot have been
processed twice by the upstream. That is when the connection was found closed before anything
was written (then it is simply discarded), or when a *reused* idle connection closed or reset
before a single byte of the response arrived *and* the method is idempotent (GET, HEAD, OPTIONS,
TRACE, PUT, DELETE). A POST or PATCH that was written is never sent twice: the caller gets an
``UpstreamProtocolError`` saying the upstream may have processed it.

Errors are the ``UpstreamError`` tree of :mod:`gatepass.errors`; their messages name the upstream
by ``host:port`` only (never a header or a body: headers carry credentials) and say what to do.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import Final, cast
from urllib.parse import quote, urlsplit

from gatepass.dataplane.http.response import UpstreamResponse
from gatepass.dataplane.http.upstream import StaleConnectionError, UpstreamConnection
from gatepass.dataplane.http.wire import FRAMING_HEADERS, Headers, encode_headers, protocol_factory
from gatepass.errors import UpstreamConnectError, UpstreamConnectTimeoutError, UpstreamProtocolError

__all__ = ["Origin", "UpstreamPool", "UpstreamResponse", "frame_request"]

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_BAD_TARGET: Final = re.compile(rb"[\x00-\x20\x7f]")
_COALESCE: Final = 64 * 1024
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests go: scheme, host and port. Connections are pooled per (scheme, host, port).

    ``base_path`` keeps the path of the base URL it was parsed from (``b"/v1"`` for
    ``https://api.openai.com/v1``, no trailing slash) for the caller to put before its targets;
    the pool itself never uses it, and it takes no part in equality.
    """

    scheme: str
    host: str
    port: int
    base_path: bytes = field(default=b"", compare=False)
    host_header: bytes = field(init=False, repr=False, compare=False)
    """The ``Host`` header value: the port only when it is not the scheme's default."""
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != _DEFAULT_PORTS.get(self.scheme):
            host = f"{host}:{self.port}"
        object.__setattr__(self, "host_header", host.encode("idna"))
        object.__setattr__(self, "_hash", hash((self.scheme, self.host, self.port)))

    def __hash__(self) -> int:
        # Computed once: the pool looks an origin up twice per request, and the hash dataclasses
        # would generate is interpreted Python even in the compiled build.
        return self._hash

    @classmethod
    def parse(cls, url: str) -> Origin:
        """The origin of ``url`` (``http://`` or ``https://``; the port defaults to 80 or 443)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"upstream URL {url!r} must start with http:// or https://")
        if not parts.hostname:
            raise ValueError(f"upstream URL {url!r} has no host: write it as https://host[:port]/path")
        if parts.username is not None or parts.password is not None:
            raise ValueError("an upstream URL may not carry a user or password: give credentials as a secret")
        if parts.query or parts.fragment:
            raise ValueError(f"upstream URL {url!r} may not have a query or a fragment: give scheme://host[:port]/path")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as exc:
            raise ValueError(f"upstream URL {url!r} has an invalid port") from exc
        base_path = quote(parts.path.rstrip("/"), safe="/%:@!$&'()*+,;=-._~").encode("ascii")
        return cls(scheme, parts.hostname.lower(), port, base_path)

    @property
    def label(self) -> str:
        """``host:port``, as error messages name the upstream."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.label}"  # no path: messages name the upstream, not a route


class UpstreamPool:
    """Keep-alive connections to upstream origins, reused most-recent first; see the module doc."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        max_idle_per_origin: int = 64,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float = 15.0,
    ) -> None:
        """``read_timeout`` bounds the wait for the first byte and between body pieces;
        ``idle_timeout`` is how long an unused connection is trusted to still be open upstream."""
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_idle = max_idle_per_origin
        self._idle_timeout = idle_timeout
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[UpstreamConnection]] = {}
        self._all: set[UpstreamConnection] = set()
        self._closed = False

    @property
    def idle_connections(self) -> int:
        """Open connections waiting for a request, over all origins."""
        return sum(1 for conns in self._idle.values() for conn in conns if not conn.closed)

    async def request(
        self, origin: Origin, method: str, target: bytes, headers: Headers, body: bytes = b""
    ) -> UpstreamResponse:
        """Send one request and return the response once its head has arrived (see the retry rule)."""
        if self._closed:
            raise RuntimeError("this UpstreamPool is closed")
        data = frame_request(origin, method, target, headers, body)
        head_request = method == "HEAD"
        conn = self._take_idle(origin)
        if conn is not None:
            try:
                return await conn.exchange(data, head_request)
            except StaleConnectionError as exc:
                if exc.written and method not in IDEMPOTENT_METHODS:
                    raise UpstreamProtocolError(
                        f"upstream {origin.label} closed a reused connection before answering; the {method} was "
                        "not sent again because the upstream may have processed it: retry if that is safe"
                    ) from exc
        conn = await self._connect(origin)
        try:
            return await conn.exchange(data, head_request)
        except StaleConnectionError as exc:
            raise UpstreamProtocolError(f"{exc}; check that {origin} speaks HTTP/1.1") from exc

    async def close(self) -> None:
        """Close every connection; exchanges still running fail with UpstreamProtocolError."""
        self._closed = True
        conns, self._all = self._all, set()
        self._idle.clear()
        for conn in conns:
            conn.shutdown()
        await asyncio.sleep(0)

    # -- connections -------------------------------------------------------------------------

    def _take_idle(self, origin: Origin) -> UpstreamConnection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        # The connections' loop is the running one (asking asyncio costs a getpid call per request).
        oldest_ok = idle[-1].loop.time() - self._idle_timeout
        while idle:
            conn = idle.pop()
            if conn.usable and conn.idle_since >= oldest_ok:
                return conn
            conn.close()  # the upstream closed it, or it idled long enough that it may have
            self._all.discard(conn)
        return None

    def _release(self, conn: UpstreamConnection, origin: Origin) -> None:
        if self._closed:
            conn.close()
            return
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self._max_idle:
            idle[:] = [c for c in idle if not c.closed]
        if len(idle) >= self._max_idle:
            conn.close()
            self._all.discard(conn)
            return
        idle.append(conn)

    def _forget(self, conn: UpstreamConnection, origin: Origin) -> None:
        self._all.discard(conn)
        idle = self._idle.get(origin)
        if idle and conn in idle:
            idle.remove(conn)

    async def _connect(self, origin: Origin) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        tls = None
        if origin.scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            tls = self._ssl_context

        def factory() -> UpstreamConnection:
            return UpstreamConnection(
                origin.label, self._read_timeout, lambda c: self._release(c, origin), lambda c: self._forget(c, origin)
            )

        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    protocol_factory(factory),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                )
            conn = cast(UpstreamConnection, protocol)
        except TimeoutError as exc:
            raise UpstreamConnectTimeoutError(
                f"connecting to upstream {origin.label} took longer than {self._connect_timeout:g} s; "
                "check the network path to it, or retry later"
            ) from exc
        except (ssl.SSLError, ssl.CertificateError) as exc:
            reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or type(exc).__name__
            raise UpstreamConnectError(
                f"TLS with upstream {origin.label} failed ({reason}); check its certificate and the CA bundle in use"
            ) from exc
        except socket.gaierror as exc:
            raise UpstreamConnectError(
                f"cannot resolve upstream host {origin.host}; check the upstream's base URL and DNS"
            ) from exc
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UpstreamConnectError(
                f"cannot connect to upstream {origin.label} ({reason}); check that it is running "
                "and that its base URL is right"
            ) from exc
        if self._closed:
            conn.close()
            raise RuntimeError("this UpstreamPool is closed")
        self._all.add(conn)
        return conn


def frame_request(origin: Origin, method: str, target: bytes, headers: Headers, body: bytes) -> list[bytes | bytearray]:
    """The request head (plus body) as bytes to write; refuses what would break the message apart."""
    if method not in _METHODS and (not method.isascii() or not method.isalpha()):
        raise ValueError(f"invalid HTTP method {method[:20]!r}")
    if not target or _BAD_TARGET.search(target) is not None:
        raise ValueError("invalid request target: it must be non-empty, without spaces or control characters")
    buf = bytearray(method.encode("ascii"))
    buf += b" "
    buf += target
    buf += b" HTTP/1.1\r\n"
    if not encode_headers(buf, headers, FRAMING_HEADERS, watch=b"host"):
        buf += b"host: "
        buf += origin.host_header
        buf += b"\r\n"
    if body or method in _BODY_METHODS:
        buf += b"content-length: %d\r\n" % len(body)
    buf += b"\r\n"
    if not body:
        return [buf]
    if len(body) <= _COALESCE:
        buf += body
        return [buf]
    return [buf, body]
