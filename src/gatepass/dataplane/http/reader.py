"""Bytes from a client in, whole requests (or one refusal) out: :class:`RequestReader`.

Parsing is llhttp's job (through httptools); the reader adds what a gateway must enforce: size
limits on the head and the body, and the refusal of anything that could smuggle a request (both
Content-Length and Transfer-Encoding, conflicting lengths, a coding other than chunked). It does
no I/O, so tests can drive it byte by byte; :mod:`~gatepass.dataplane.http.connection` owns the
socket, the order of responses and the timers.

Each complete request is appended to the ``out`` queue. The first refusal stops the reader: a
:class:`Refusal` is appended after the requests already read, and later bytes are ignored.
A CONNECT request (when ``allow_connect``) also stops it: what follows its head is tunnel data,
kept in :attr:`RequestReader.tunnel_data` for the connection to forward.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Final

import httptools

from gatepass.dataplane.http.messages import IncomingRequest, ServerLimits
from gatepass.dataplane.http.wire import Headers, parse_content_length

__all__ = ["BODY", "HEAD", "IDLE", "Refusal", "RequestReader", "split_target"]

IDLE: Final = 0
"""Between requests: nothing of the next one has arrived."""
HEAD: Final = 1
"""Inside a request line or its headers."""
BODY: Final = 2
"""Inside a body (or the trailers of a chunked one)."""


@dataclass(slots=True)
class Refusal:
    """An error the server answers by itself; the connection closes after it."""

    status: int
    code: str
    message: str
    path: str
    head: bool


_SPECIAL: Final = frozenset({b"content-length", b"transfer-encoding", b"expect"})
_METHODS: Final = {m.encode(): m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT")}


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def split_target(target: bytes) -> tuple[str, bytes]:
    """(path, query) of a request target; the path is not percent-decoded."""
    if target[:1] == b"/":
        path, _, query = target.partition(b"#")[0].partition(b"?")
        return path.decode("latin-1"), query
    if target == b"*":
        return "*", b""
    try:
        url: Any = httptools.parse_url(target)  # its path and query may be None, whatever the stubs say
    except httptools.HttpParserInvalidURLError:
        return "", b""
    return (url.path or b"/").decode("latin-1"), url.query or b""


class RequestReader:
    """Parses the requests of one connection into ``out``, enforcing :class:`ServerLimits`."""

    __slots__ = (
        "_body",
        "_body_size",
        "_chunk_len",
        "_head_seen",
        "_headers",
        "_limits",
        "_max_body",
        "_max_head",
        "_method",
        "_out",
        "_parser",
        "_raw",
        "_seq",
        "_special",
        "_upgrade",
        "_upgrade_request",
        "_url",
        "_version",
        "allow_connect",
        "continue_wanted",
        "peer",
        "received",
        "state",
        "stopped",
        "tunnel_data",
    )

    def __init__(
        self,
        limits: ServerLimits,
        peer: tuple[str, int],
        out: deque[IncomingRequest | Refusal],
        allow_connect: bool = False,
    ) -> None:
        self._limits = limits
        self._max_head = limits.max_header_bytes
        self._max_body = limits.max_body_bytes
        self.peer = peer
        """(ip, port) of the client, copied into each request."""
        self._out = out
        self._parser = httptools.HttpRequestParser(self)
        self.state = IDLE
        """Where the reader is in the current request: IDLE, HEAD or BODY."""
        self.stopped = False
        """True once a refusal was queued: later bytes are ignored."""
        self.continue_wanted = False
        """The request being read asked for ``100 Continue`` and its body has not come yet."""
        self.received = 0
        """Requests read so far."""
        self.allow_connect = allow_connect
        """Hand CONNECT requests on (else they are refused with 405)."""
        self.tunnel_data: bytearray | None = None
        """Once a CONNECT request was read: the bytes that followed its head."""
        self._seq = 0
        self._raw = 0
        self._chunk_len = 0
        self._head_seen = 0
        self._url = b""
        self._method = ""
        self._version = "1.1"
        self._headers: Headers = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._special: Headers = []  # content-length, transfer-encoding and expect fields
        self._upgrade = False
        self._upgrade_request: IncomingRequest | None = None

    def feed(self, data: bytes) -> None:
        """Parse ``data``; complete requests and a refusal land in ``out``."""
        if self.stopped:
            return
        if self.state == HEAD:
            self._head_seen += len(data)  # this chunk holds part of the head being read
        while True:
            self._chunk_len = len(data)
            seq, state = self._seq, self.state
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserUpgrade as exc:
                data = data[exc.args[0] :]
                if self._on_upgrade(data) and data:
                    continue
            except httptools.HttpParserCallbackError as exc:
                refused = exc.__context__
                if not isinstance(refused, _Refused):
                    raise  # a bug of ours inside a callback: let the connection report it
                self.refuse(refused.status, refused.code, refused.message)
            except httptools.HttpParserError as exc:
                self.refuse(400, "bad_request", f"malformed HTTP/1.1 request: {exc}")
            else:
                if state != IDLE and seq == self._seq and state == self.state:
                    self._count_raw(len(data))  # the whole chunk belonged to one unfinished head or body
            return

    def refuse(self, status: int, code: str, message: str) -> None:
        """Stop reading and queue an error answer after the requests already read."""
        if self.stopped:
            return
        self.stopped = True
        self.continue_wanted = False
        path, _ = split_target(self._url)
        self._out.append(Refusal(status, code, message, path, self._method == "HEAD"))

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._seq += 1
        self.state = HEAD
        self._raw = 0
        self._head_seen = self._chunk_len  # the head is at most this long so far
        self._url = b""
        self._method = ""
        self._headers = []
        self._body = []
        self._body_size = 0
        self._special = []
        self._upgrade = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.state != HEAD:
            return  # a trailer of a chunked body: counted as raw body bytes, not kept
        name = name.lower()
        self._headers.append((name, value))
        if name in _SPECIAL:
            self._special.append((name, value))

    def on_headers_complete(self) -> None:
        self.state = BODY
        self._raw = 0
        if self._head_seen > self._max_head and self._head_size() > self._max_head:
            raise _Refused(431, "header_too_large", self._too_large_head())
        parser = self._parser
        raw_method = parser.get_method()
        self._method = method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        self._version = version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise _Refused(505, "http_version_not_supported", f"HTTP/{version} is not served: use HTTP/1.1")
        special = self._special
        if len(special) == 1 and special[0][0] == b"content-length" and special[0][1].isdigit():
            if int(special[0][1]) > self._max_body:  # the common case: one plain Content-Length
                raise _Refused(413, "body_too_large", self._too_large_body())
            if parser.should_upgrade():
                self._check_special(method, version, True)
        elif special:
            self._check_special(method, version, parser.should_upgrade())
        elif parser.should_upgrade():
            self._upgrade = True

    def on_body(self, body: bytes) -> None:
        size = self._body_size = self._body_size + len(body)
        if size > self._max_body:
            raise _Refused(413, "body_too_large", self._too_large_body())
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.state = IDLE
        self.continue_wanted = False
        self.received += 1
        body, target, parser, peer = self._body, self._url, self._parser, self.peer
        if target[:1] == b"/" and b"?" not in target and b"#" not in target:
            path, query = target.decode("latin-1"), b""
        else:
            path, query = split_target(target)
        request = IncomingRequest(
            self._method,
            target,
            path,
            query,
            self._headers,
            body[0] if len(body) == 1 else b"".join(body),
            peer[0],
            peer[1],
            self._version,
            parser.should_keep_alive(),
        )
        if self._upgrade:
            self._upgrade_request = request  # finished in _on_upgrade once the parser stops
        else:
            self._out.append(request)

    # -- checks ------------------------------------------------------------------------------

    def _check_special(self, method: str, version: str, upgrade: bool) -> None:
        """Framing, upgrade and expectation checks; refuses what could smuggle a request."""
        lengths: list[bytes] = []
        codings: list[bytes] = []
        expect: list[bytes] = []
        for name, value in self._special:
            (lengths if name == b"content-length" else codings if name == b"transfer-encoding" else expect).append(
                value
            )
        length = 0
        if codings:
            if lengths:
                raise _Refused(400, "bad_request", "a request may not have both Content-Length and Transfer-Encoding")
            if len(codings) != 1 or codings[0].strip().lower() != b"chunked":
                raise _Refused(400, "bad_request", "the only Transfer-Encoding served is chunked")
        elif lengths:
            if any(value != lengths[0] for value in lengths):
                raise _Refused(400, "bad_request", "conflicting Content-Length headers")
            parsed = parse_content_length(lengths[0])
            if parsed is None:
                raise _Refused(400, "bad_request", "Content-Length must be a number of bytes")
            if parsed > self._max_body:
                raise _Refused(413, "body_too_large", self._too_large_body())
            length = parsed
        has_body = bool(codings) or length > 0
        if upgrade:
            self._upgrade = True
            if has_body and method == "CONNECT":
                raise _Refused(400, "bad_request", "a CONNECT request has no body: send the tunnel's bytes after it")
            if has_body:
                raise _Refused(400, "bad_request", "an Upgrade request with a body is not served: drop the Upgrade")
        if expect and version == "1.1":
            if len(expect) != 1 or expect[0].strip().lower() != b"100-continue":
                raise _Refused(417, "expectation_failed", "only the expectation 100-continue is supported")
            self.continue_wanted = has_body

    def _head_size(self) -> int:
        """The exact size of the request line and headers just read (16 for method, version, line ends)."""
        return 16 + len(self._url) + sum(len(name) + len(value) + 4 for name, value in self._headers)

    def _count_raw(self, size: int) -> None:
        """Bound the bytes no callback has reported yet (one endless header line or trailer)."""
        self._raw += size
        if self.state == HEAD and self._raw > self._max_head:
            self.refuse(431, "header_too_large", self._too_large_head())
        elif self.state == BODY and self._raw > self._max_body + self._max_head:
            self.refuse(413, "body_too_large", self._too_large_body())

    def _too_large_head(self) -> str:
        return f"the request line and headers exceed {self._limits.max_header_bytes} bytes"

    def _too_large_body(self) -> str:
        return f"the request body exceeds {self._limits.max_body_bytes} bytes"

    def _on_upgrade(self, rest: bytes) -> bool:
        """A CONNECT or Upgrade request has been read; True to go on parsing the bytes after it (``rest``).

        A CONNECT is handed on (with ``allow_connect``) and stops the reader: ``rest`` and what comes
        later belong to the tunnel. Without ``allow_connect`` it is refused with 405. Other upgrades
        (websocket, h2c) are ignored: the request is served as plain HTTP/1.1 and a fresh parser
        reads what follows.
        """
        request, self._upgrade_request = self._upgrade_request, None
        if request is not None and request.method == "CONNECT" and self.allow_connect:
            self._out.append(request)
            self.stopped = True
            self.tunnel_data = bytearray(rest)
            return False
        if request is None or request.method == "CONNECT":
            self.refuse(405, "method_not_allowed", "CONNECT is not served on this listener")
            return False
        self._out.append(request)
        self._parser = httptools.HttpRequestParser(self)
        return True
