"""The response side of one request: :class:`ResponseWriter`.

A handler answers either in one shot with :meth:`ResponseWriter.send` (framed by Content-Length)
or as a stream: :meth:`~ResponseWriter.start`, then :meth:`~ResponseWriter.write` per chunk and
:meth:`~ResponseWriter.end`. A stream without a ``content-length`` header is sent chunked (or, to an
HTTP/1.0 client, delimited by closing the connection). ``write`` waits while the client is slow.

Disconnects: once the client has gone away, ``send``, ``write`` and ``end`` raise
:class:`ClientDisconnected` (a ``ConnectionError``) instead of writing; the server treats that
exception escaping a handler as a normal end. A handler that wants to stop early watches
:attr:`~ResponseWriter.disconnected` or awaits :meth:`~ResponseWriter.wait_disconnected`.

:meth:`~ResponseWriter.abort` gives up on a response and closes the connection, so the client
sees it cut short. :meth:`~ResponseWriter.tunnel` answers a CONNECT with ``200 Connection
established`` and turns the connection into a tunnel. The writer does no I/O of its own: it
formats bytes and hands them to a :class:`ResponseSink` (the connection), so it can be driven
without sockets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Protocol

from gatepass.dataplane.http.wire import (
    FRAMING_HEADERS,
    body_allowed,
    encode_headers,
    parse_content_length,
    status_line,
)

if TYPE_CHECKING:
    from gatepass.dataplane.http.tunnel import Tunnel, TunnelUpstream

__all__ = ["ClientDisconnected", "ResponseSink", "ResponseWriter"]

_NEW: Final = 0
_STREAMING: Final = 1
_DONE: Final = 2
_COALESCE: Final = 64 * 1024  # bodies up to this size are copied behind the head: one write, one syscall
_STATUS_LINES: Final = {code: status_line(code) for code in (200, 201, 204, 400, 401, 403, 404, 429, 500, 502, 503)}


class ClientDisconnected(Exception):
    """The client closed the connection; nothing more can be sent to it."""

    def __init__(self) -> None:
        super().__init__("the client closed the connection before the response was complete")


class ResponseSink(Protocol):
    """What a :class:`ResponseWriter` needs from its connection."""

    lost: bool
    writing_paused: bool

    def emit(self, data: bytes | bytearray) -> None: ...

    async def drain(self) -> None: ...

    async def wait_lost(self) -> None: ...

    def keep_alive_allowed(self) -> bool: ...

    def response_done(self, keep_alive: bool) -> None: ...

    def start_tunnel(self, head: bytes, upstream: TunnelUpstream, idle_timeout: float) -> Tunnel: ...


class ResponseWriter:
    """Writes the response to one request; given to the handler with the request."""

    __slots__ = (
        "_chunked",
        "_discard",
        "_head",
        "_http10",
        "_keep",
        "_keep_alive",
        "_remaining",
        "_sink",
        "_state",
        "status",
    )

    def __init__(self, sink: ResponseSink, head_request: bool, http10: bool, keep_alive: bool) -> None:
        self._sink = sink
        self._head = head_request
        self._http10 = http10
        self._keep_alive = keep_alive
        self._state = _NEW
        self._keep = False
        self._chunked = False
        self._discard = False
        self._remaining: int | None = None
        self.status: int | None = None
        """The status sent, once the response has started."""

    @property
    def started(self) -> bool:
        """True once the status line has been handed to the connection."""
        return self._state != _NEW

    @property
    def finished(self) -> bool:
        """True once the whole response has been handed to the connection."""
        return self._state == _DONE

    @property
    def disconnected(self) -> bool:
        """True once the client has gone away."""
        return self._sink.lost

    async def wait_disconnected(self) -> None:
        """Return when the client goes away (at once if it already has)."""
        await self._sink.wait_lost()

    def send(self, status: int, headers: Sequence[tuple[bytes, bytes]] = (), body: bytes = b"") -> None:
        """Send a whole response framed by Content-Length (framing headers given are replaced)."""
        sink = self._sink
        if self._state != _NEW or sink.lost:
            self._begin()
        buf = bytearray(_STATUS_LINES.get(status) or status_line(status))
        encode_headers(buf, headers, FRAMING_HEADERS)
        if status < 200 or status == 204 or status == 304:  # no body allowed
            body = b""
        elif self._head and not body:
            # A HEAD answer may state the length the GET would have had.
            length = _content_length(headers)
            buf += b"content-length: %d\r\n" % (length or 0)
        else:
            buf += b"content-length: %d\r\n" % len(body)
        keep = self._keep_alive and sink.keep_alive_allowed()
        if not keep:
            buf += b"connection: close\r\n\r\n"
        elif self._http10:
            buf += b"connection: keep-alive\r\n\r\n"
        else:
            buf += b"\r\n"
        self.status = status
        self._state = _DONE
        if self._head or not body:
            sink.emit(buf)
        elif len(body) <= _COALESCE:
            buf += body
            sink.emit(buf)
        else:
            sink.emit(buf)
            sink.emit(body)
        sink.response_done(keep)

    def start(self, status: int, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Send the status and headers of a streamed response; chunked unless ``content-length`` is given."""
        self._begin()
        length = _content_length(headers)
        buf = bytearray(status_line(status))
        encode_headers(buf, headers, FRAMING_HEADERS)
        if not body_allowed(status):
            self._discard = True
        elif length is not None:
            buf += b"content-length: %d\r\n" % length
            self._remaining = length
            self._discard = self._head
        elif self._head:
            self._discard = True
        elif self._http10:
            self._keep_alive = False  # HTTP/1.0 has no chunked coding: the close ends the body
        else:
            buf += b"transfer-encoding: chunked\r\n"
            self._chunked = True
        self._keep = self._end_head(buf)
        self.status = status
        self._state = _STREAMING
        self._sink.emit(buf)

    def tunnel(
        self, upstream: TunnelUpstream, headers: Sequence[tuple[bytes, bytes]] = (), *, idle_timeout: float
    ) -> Tunnel:
        """Answer the CONNECT being handled with 200 and join its connection to ``upstream``.

        Bytes flow both ways until the tunnel ends: await its ``wait()`` for the
        :class:`~gatepass.dataplane.http.tunnel.TunnelStats`. ``upstream`` is closed if the tunnel
        cannot start. Framing headers given are left out (a 2xx to CONNECT has none).
        """
        try:
            self._begin()
            buf = bytearray(b"HTTP/1.1 200 Connection established\r\n")
            encode_headers(buf, headers, FRAMING_HEADERS)
            buf += b"\r\n"
            self.status = 200
            self._state = _DONE
            return self._sink.start_tunnel(bytes(buf), upstream, idle_timeout)
        except BaseException:
            upstream.close()
            raise

    async def write(self, chunk: bytes) -> None:
        """Send one piece of a streamed body; waits while the client is not reading."""
        if self._state != _STREAMING:
            raise RuntimeError("write() needs a started response: call start() first, and not after end()")
        sink = self._sink
        if sink.lost:
            raise ClientDisconnected
        if chunk and not self._discard:
            self._emit_chunk(chunk)
        if sink.writing_paused:
            await sink.drain()
            if sink.lost:
                raise ClientDisconnected

    async def end(self, chunk: bytes = b"") -> None:
        """Send the last piece (if any) and finish the response. Calling it again does nothing."""
        if self._state == _DONE:
            return
        if self._state != _STREAMING:
            raise RuntimeError("end() needs a started response: call start() first")
        if self._sink.lost:
            raise ClientDisconnected
        if chunk and not self._discard:
            if self._chunked and len(chunk) <= _COALESCE:
                self._state = _DONE  # the last piece and the terminator in one write
                self._sink.emit(b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
                self._sink.response_done(self._keep)
                return
            self._emit_chunk(chunk)
        self._finish()

    def _finish(self) -> None:
        keep = self._keep
        if self._chunked:
            self._sink.emit(b"0\r\n\r\n")
        elif self._remaining and not self._discard:
            keep = False  # shorter than announced: only a close tells the client the body is cut
        self._state = _DONE
        self._sink.response_done(keep)

    def abort(self) -> None:
        """Give up on this response: the connection closes after what was already written.

        The client sees the response cut short (a chunked body without its last chunk, fewer bytes
        than the content-length) or, before ``start``/``send``, no response at all. Does nothing
        once the response is complete.
        """
        if self._state != _DONE:
            self._state = _DONE
            self._sink.response_done(False)

    def _emit_chunk(self, chunk: bytes) -> None:
        if self._chunked:
            if len(chunk) <= _COALESCE:
                self._sink.emit(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self._sink.emit(b"%x\r\n" % len(chunk))
                self._sink.emit(chunk)
                self._sink.emit(b"\r\n")
            return
        if self._remaining is not None:
            if len(chunk) > self._remaining:
                raise ValueError(f"the response body is longer than its content-length ({self._remaining} bytes left)")
            self._remaining -= len(chunk)
        self._sink.emit(chunk)

    def _begin(self) -> None:
        if self._state != _NEW:
            raise RuntimeError("this response has already started: send() or start() only once")
        if self._sink.lost:
            raise ClientDisconnected

    def _end_head(self, buf: bytearray) -> bool:
        keep = self._keep_alive and self._sink.keep_alive_allowed()
        if not keep:
            buf += b"connection: close\r\n\r\n"
        elif self._http10:
            buf += b"connection: keep-alive\r\n\r\n"
        else:
            buf += b"\r\n"
        return keep


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            length = parse_content_length(value)
            if length is None:
                raise ValueError(f"invalid content-length header {value[:20]!r}: give a number of bytes")
            return length
    return None
