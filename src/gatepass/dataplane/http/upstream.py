"""One keep-alive connection to an upstream: :class:`UpstreamConnection`.

It is an asyncio Protocol over the httptools response parser: it sends one
request at a time, resolves the response head, then pushes body pieces into the
:class:`UpstreamResponse` as they arrive. When the consumer falls behind by more than
``BUFFER_HIGH`` bytes the socket stops being read until the consumer has taken what is buffered.
A read timer fails the exchange when the upstream sends nothing for ``read_timeout`` seconds; while
reading is paused the same bound applies to the consumer instead (a response nobody reads or
closes is dropped rather than holding its connection forever). Cancelling a read abandons the
response and closes its connection.

When the whole response has arrived and both sides allow keep-alive, the connection hands itself
back to its pool through the ``release`` callback (the buffered body stays with the response).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, cast

import httptools

from gatepass.dataplane.http.response import UpstreamResponse
from gatepass.dataplane.http.wire import Headers, body_allowed
from gatepass.errors import UpstreamError, UpstreamProtocolError, UpstreamTimeoutError

__all__ = ["BUFFER_HIGH", "StaleConnectionError", "UpstreamConnection"]

BUFFER_HIGH: Final = 1024 * 1024
"""Body bytes buffered for a slow consumer before the upstream socket stops being read."""


class StaleConnectionError(UpstreamProtocolError):
    """The connection closed before any byte of the response: the request may not have arrived.

    ``written`` is False when nothing of the request was written (so sending it again is safe).
    """

    def __init__(self, message: str, *, written: bool = True) -> None:
        super().__init__(message)
        self.written = written


class UpstreamConnection:
    """One keep-alive connection to an upstream origin; one exchange at a time.

    An asyncio protocol by its methods (see :func:`~gatepass.dataplane.http.wire.protocol_factory`)."""

    def __init__(
        self,
        label: str,
        read_timeout: float,
        release: Callable[[UpstreamConnection], None],
        forget: Callable[[UpstreamConnection], None],
    ) -> None:
        """``release`` takes the connection back when an exchange ends in keep-alive; ``forget`` is
        told when it has closed."""
        self.label = label
        """``host:port`` of the upstream, for messages."""
        self.closed = False
        self.idle_since = 0.0
        self._release = release
        self._forget = forget
        self._read_timeout = read_timeout
        self.loop = asyncio.get_running_loop()
        """The event loop it runs on."""
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._active = False
        self._head_waiter: asyncio.Future[UpstreamResponse] | None = None
        self._response: UpstreamResponse | None = None
        self._head_request = False
        self._received = False
        self._reason = b""
        self._headers: Headers = []
        self._informational = False
        self._paused = False
        self._paused_at = 0.0
        self._last_rx = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # -- the exchange ------------------------------------------------------------------------

    async def exchange(self, data: list[bytes | bytearray], head_request: bool) -> UpstreamResponse:
        """Send one request (already framed) and return the response once its head has arrived."""
        if not self.usable or self._transport is None:
            raise StaleConnectionError(f"the connection to upstream {self.label} is closed", written=False)
        self._active = True
        self._head_request = head_request
        self._received = False
        self._response = None
        waiter: asyncio.Future[UpstreamResponse] = self.loop.create_future()
        self._head_waiter = waiter
        for piece in data:
            self._transport.write(piece)
        self._last_rx = now = self.loop.time()
        if self._timer is None:  # else the timer already runs and re-arms itself from _last_rx
            self._timer = self.loop.call_at(now + self._read_timeout, self._on_timer)
        try:
            return await waiter
        except asyncio.CancelledError:
            self.abandon()
            raise

    @property
    def usable(self) -> bool:
        """Open, as far as this side knows: not closed, and not closing on the upstream's EOF."""
        return not self.closed and self._transport is not None and not self._transport.is_closing()

    def drained(self) -> None:
        """The consumer has taken what was buffered: read the socket again."""
        if self._paused and self._transport is not None and not self.closed:
            self._paused = False
            self._last_rx = self.loop.time()
            self._transport.resume_reading()

    def abandon(self) -> None:
        """Give up on the current exchange: the connection cannot be reused."""
        self._active = False
        self.close()

    def shutdown(self) -> None:
        """The pool is closing: fail the exchange in progress, if any, and close."""
        if self._active:
            self._fail(
                UpstreamProtocolError(f"the connection to upstream {self.label} was closed: the gateway is stopping")
            )
        else:
            self.close()

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self.closed = True
            self._transport.abort()

    def _fail(self, error: UpstreamError) -> None:
        waiter, response = self._head_waiter, self._response
        self._head_waiter = self._response = None
        self._active = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        elif response is not None:
            response._fail(error)
        self.close()

    def _done(self) -> None:
        if self._response is not None:
            self._response._finish()
        self._response = None
        self._active = False
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        keep_alive = self._parser.should_keep_alive()
        if self._head_request:
            self._parser = httptools.HttpResponseParser(self)  # a HEAD answer's body never comes
        if keep_alive and not self.closed:
            self.idle_since = self.loop.time()
            self._release(self)
        else:
            self.close()

    def _eof_body(self, response: UpstreamResponse) -> bool:
        return body_allowed(response.status) and not self._head_request and _delimited_by_close(response.headers)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._active:
            return  # idle: the next exchange starts a timer again
        now = self.loop.time()
        # While reading is paused the upstream is not to blame; a consumer that takes nothing for as
        # long is (a handler that dropped the response without closing it), so the same bound applies.
        due = (self._paused_at if self._paused else self._last_rx) + self._read_timeout
        if now < due:
            self._timer = self.loop.call_at(due, self._on_timer)
            return
        if self._paused:
            message = (
                f"the response from upstream {self.label} was not read for {self._read_timeout:g} s "
                "and was dropped; read or close responses promptly"
            )
        else:
            what = "the rest of the response" if self._received else "a response"
            message = (
                f"upstream {self.label} did not send {what} within {self._read_timeout:g} s; it may be overloaded: "
                "retry later, or raise the read timeout for this upstream"
            )
        self._fail(UpstreamTimeoutError(message))

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._forget(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._active:
            return
        response = self._response
        if response is not None and exc is None and self._eof_body(response):
            self._done()  # a body delimited by the close has ended
            return
        how = "reset the connection" if isinstance(exc, ConnectionResetError) else "closed the connection"
        if not self._received:
            self._fail(StaleConnectionError(f"upstream {self.label} {how} before sending a response"))
        elif self._response is None:
            self._fail(
                UpstreamProtocolError(
                    f"upstream {self.label} {how} in the middle of the response head; "
                    "retry the request if it is safe to repeat"
                )
            )
        else:
            self._fail(
                UpstreamProtocolError(
                    f"upstream {self.label} {how} before the end of the response body; the body is incomplete: "
                    "retry the request if it is safe to repeat"
                )
            )

    def eof_received(self) -> bool:
        return False

    # Requests are written whole and the transport buffers what the socket does not take yet.
    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        if not self._active:
            self.close()  # bytes nobody asked for: the connection cannot be trusted any more
            return
        self._received = True
        self._last_rx = self.loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError(f"upstream {self.label} switched protocols without being asked"))
        except httptools.HttpParserError as exc:
            reason = str(exc.__context__ or exc) if isinstance(exc, httptools.HttpParserCallbackError) else str(exc)
            self._fail(
                UpstreamProtocolError(
                    f"upstream {self.label} sent bytes that are not a valid HTTP/1.1 response ({reason[:80]}); "
                    "check that the upstream's base URL points at an HTTP server"
                )
            )

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self._active:
            raise UpstreamProtocolError("a response nobody asked for")
        self._reason = b""
        self._headers = []

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._response is None:
            self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if status == 101:
            raise UpstreamProtocolError("it switched protocols without being asked")
        if 100 <= status < 200:
            self._informational = True
            return
        headers = self._headers
        response = self._response = UpstreamResponse(self, status, self._reason.decode("latin-1"), headers)
        waiter, self._head_waiter = self._head_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
        if self._head_request:
            self._done()

    def on_body(self, body: bytes) -> None:
        response = self._response
        if response is not None and response._feed(body) > BUFFER_HIGH and not self._paused:
            self._paused = True
            self._paused_at = self.loop.time()
            if self._transport is not None:
                self._transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self._active and self._response is not None:
            self._done()


def _delimited_by_close(headers: Headers) -> bool:
    """True when a response body has neither a length nor a final chunked coding: the close ends it."""
    coding = b""
    for name, value in headers:
        if name == b"content-length":
            return False
        if name == b"transfer-encoding":
            coding = value
    return coding.rsplit(b",", 1)[-1].strip().lower() != b"chunked"
