"""One client connection of the server: an asyncio Protocol that orders, frames and times.

The :class:`~gatepass.dataplane.http.reader.RequestReader` turns bytes into requests; this class
owns the socket:

* Requests are answered strictly in order. A complete request is handed to the handler if none is
  running, else queued; while one is queued the socket is not read, so a pipelining client cannot
  make the server buffer more than one read beyond the request being handled. The end of a
  response starts the next one.
* A refusal of the reader (malformed, too large, smuggling-shaped, CONNECT) or a timeout is
  answered after the responses already owed; then the connection closes.
* The server closes by lingering: it sends its FIN and drops what still comes for a moment, so a
  client still sending a refused body (or pipelined requests) reads the answer instead of a reset.
* One timer per connection, moved lazily: the head must arrive within ``header_timeout``, each
  body piece within ``body_timeout`` of the previous one, and an idle keep-alive connection closes
  after ``keepalive_timeout``. No input timer runs while a handler runs.
* The client's EOF counts as a disconnect (as in uvicorn and aiohttp). While a request is queued
  behind a running one the socket is not read, so a disconnect shows only at the next write.
* A CONNECT request (servers started with ``allow_connect``) stops the reading of HTTP: the socket
  is not read while the handler decides, and the connection closes after any answer but a tunnel
  (:meth:`ResponseWriter.tunnel`); a tunnel then owns the socket (see
  :mod:`~gatepass.dataplane.http.tunnel`) and the client's EOF is passed on, not taken as a close.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, cast

from gatepass.dataplane.http.messages import ErrorBody, IncomingRequest, ServerLimits, default_error_body
from gatepass.dataplane.http.reader import BODY, HEAD, IDLE, Refusal, RequestReader
from gatepass.dataplane.http.tunnel import Tunnel, TunnelUpstream
from gatepass.dataplane.http.writer import ClientDisconnected, ResponseWriter

__all__ = ["Handler", "ServerConnection", "ServerContext"]

Handler = Callable[[IncomingRequest, ResponseWriter], Awaitable[None]]
"""``async def handler(request, writer)``: answer ``request`` through ``writer``."""

_log = logging.getLogger("gatepass.dataplane.http")

_T_HEAD: Final = 0
_T_BODY: Final = 1
_T_KEEPALIVE: Final = 2
_T_LINGER: Final = 3
_LINGER_SECONDS: Final = 2.0
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


class ServerContext:
    """What every connection of one server shares: the handler, limits, and the live sets."""

    __slots__ = ("allow_connect", "closing", "connections", "error_body", "handler", "limits", "tasks")

    def __init__(
        self, handler: Handler, limits: ServerLimits, error_body: ErrorBody | None, allow_connect: bool = False
    ) -> None:
        self.handler = handler
        self.allow_connect = allow_connect
        """CONNECT requests go to the handler (else the server refuses them with 405)."""
        self.limits = limits
        self.error_body: ErrorBody = error_body or default_error_body
        self.connections: set[ServerConnection] = set()
        self.tasks: dict[ResponseWriter, asyncio.Task[None]] = {}
        """The running handlers, by the writer of their response."""
        self.closing = False


class ServerConnection:
    """Serves the requests of one client connection, in order, through the server's handler.

    An asyncio protocol by its methods (see :func:`~gatepass.dataplane.http.wire.protocol_factory`)."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._limits = ctx.limits
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._queue: deque[IncomingRequest | Refusal] = deque()
        self._reader = RequestReader(ctx.limits, ("", 0), self._queue, ctx.allow_connect)
        self._current: ResponseWriter | None = None
        self._started = 0
        self._closing = False
        self._reading_paused = False
        self.writing_paused = False
        """ResponseSink: the transport asked us to stop writing."""
        self.lost = False
        """ResponseSink: the client has gone (connection_lost). Until it is reported, emit() drops
        writes to a transport already closing on the client's EOF, so none reaches uvloop."""
        self._drain_waiter: asyncio.Future[None] | None = None
        self._lost_waiter: asyncio.Future[None] | None = None
        self._deadline: float | None = None
        self._deadline_kind = _T_HEAD
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._tunnel: Tunnel | None = None
        self._eof_pending = False  # the client's EOF came while its CONNECT was being decided

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._reader.peer = (str(peer[0]), int(peer[1]))
        self._ctx.connections.add(self)
        if self._ctx.closing:
            transport.close()
            return
        self._set_deadline(self._loop.time() + self._limits.header_timeout, _T_HEAD)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._ctx.connections.discard(self)
        if self._tunnel is not None:
            self._tunnel.finish("client")
        self._queue.clear()
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for waiter in (self._drain_waiter, self._lost_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def eof_received(self) -> bool:
        if self._tunnel is not None:
            return self._tunnel.client_eof()
        if self._reader.tunnel_data is not None:
            self._eof_pending = True  # a half-close before the tunnel opens is passed on once it does
            return True
        return False  # a client that stops sending is treated as gone: close

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self._tunnel is not None:
            self._tunnel.client_full(True)

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self._tunnel is not None:
            self._tunnel.client_full(False)
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.client_data(data)
            return
        reader = self._reader
        if reader.stopped:
            if reader.tunnel_data is not None:
                reader.tunnel_data += data  # a CONNECT is being decided: what follows its head is kept
            return  # a refusal is queued or sent: what follows is discarded
        try:
            reader.feed(data)
        except Exception as exc:
            _log.error("reading an HTTP request failed inside gatepass: %s", type(exc).__name__, exc_info=exc)
            reader.refuse(500, "internal_error", "the gateway failed to read the request")
        if self._queue:
            self._next()
            waiting = self._queue or reader.tunnel_data is not None
            if waiting and not self._reading_paused and not self.lost and self._transport is not None:
                self._reading_paused = True
                self._transport.pause_reading()
        if self._current is None and not reader.stopped:
            if reader.continue_wanted:
                reader.continue_wanted = False
                self.emit(_CONTINUE)
            if reader.state == HEAD and self._deadline_kind != _T_HEAD:
                self._set_deadline(self._loop.time() + self._limits.header_timeout, _T_HEAD)
            elif reader.state == BODY:
                self._set_deadline(self._loop.time() + self._limits.body_timeout, _T_BODY)

    # -- ordering ----------------------------------------------------------------------------

    def _next(self) -> None:
        """Start the handler of the next queued request (or answer a refusal) if no response is being written."""
        while self._current is None and self._queue and not self.lost:
            item = self._queue.popleft()
            if isinstance(item, Refusal):
                self._queue.clear()
                writer = ResponseWriter(self, item.head, False, False)
                self._current = writer
                self._write_error(writer, item.status, item.code, item.message, item.path)
                return
            self._started += 1
            self._deadline = None  # no input timer while a handler runs
            if item.method == "CONNECT":
                self._closing = True  # any answer but a tunnel ends the connection
            writer = self._current = ResponseWriter(
                self, item.method == "HEAD", item.http_version == "1.0", item.keep_alive
            )
            self._ctx.tasks[writer] = self._loop.create_task(self._run(item, writer))

    async def _run(self, request: IncomingRequest, writer: ResponseWriter) -> None:
        try:
            await self._ctx.handler(request, writer)
        except ClientDisconnected:
            writer.abort()
        except asyncio.CancelledError:
            writer.abort()
            raise
        except Exception as exc:
            _log.error("handler failed on %s %s: %s", request.method, request.path, type(exc).__name__, exc_info=exc)
            if writer.started or self.lost:
                writer.abort()
            else:
                self._closing = True
                self._write_error(
                    writer, 500, "internal_error", "the gateway failed handling the request", request.path
                )
        else:
            if self.lost:
                writer.abort()
            elif not writer.started:
                _log.error("handler returned without responding on %s %s", request.method, request.path)
                self._write_error(writer, 500, "internal_error", "the gateway did not produce a response", request.path)
            elif not writer.finished:
                writer._finish()
        finally:
            self._ctx.tasks.pop(writer, None)

    def _write_error(self, writer: ResponseWriter, status: int, code: str, message: str, path: str) -> None:
        try:
            headers, body = self._ctx.error_body(path, status, code, message)
        except Exception as exc:
            _log.error("error_body callback failed: %s", type(exc).__name__, exc_info=exc)
            headers, body = default_error_body(path, status, code, message)
        try:
            writer.send(status, headers, body)
        except ClientDisconnected:
            pass

    # -- ResponseSink (used by ResponseWriter) ----------------------------------------------

    def emit(self, data: bytes | bytearray) -> None:
        transport = self._transport
        if transport is not None and not self.lost and not transport.is_closing():
            transport.write(data)

    async def drain(self) -> None:
        if not self.writing_paused or self.lost:
            return
        if self._drain_waiter is None:
            self._drain_waiter = self._loop.create_future()
        await asyncio.shield(self._drain_waiter)

    async def wait_lost(self) -> None:
        if self.lost:
            return
        if self._lost_waiter is None:
            self._lost_waiter = self._loop.create_future()
        await asyncio.shield(self._lost_waiter)

    def start_tunnel(self, head: bytes, upstream: TunnelUpstream, idle_timeout: float) -> Tunnel:
        """Send ``head`` (the 200 answering the CONNECT being handled) and join this connection to ``upstream``."""
        transport = self._transport
        if self.lost or transport is None or transport.is_closing():
            raise ClientDisconnected
        first = self._reader.tunnel_data
        if first is None or self._tunnel is not None:
            raise RuntimeError("only the CONNECT request being handled can become a tunnel")
        self._reader.tunnel_data = None
        transport.write(head)
        self._tunnel = Tunnel(transport, upstream, idle_timeout)
        self._reading_paused = False  # the tunnel reads the socket from now on
        self._tunnel.start(bytes(first), self._eof_pending)
        return self._tunnel

    def keep_alive_allowed(self) -> bool:
        cap = self._limits.max_requests_per_connection
        return not (self._closing or self._ctx.closing or self.lost) and (cap is None or self._started < cap)

    def response_done(self, keep_alive: bool) -> None:
        self._current = None
        if self.lost:
            return
        if not keep_alive or self._closing or self._ctx.closing:
            self._close()
            return
        if self._reading_paused and self._transport is not None and self._reader.tunnel_data is None:
            self._reading_paused = False
            self._transport.resume_reading()
        if self._queue:
            self._next()
            return
        reader = self._reader
        if reader.continue_wanted:
            reader.continue_wanted = False
            self.emit(_CONTINUE)
        now = self._loop.time()
        if reader.state == IDLE:
            self._set_deadline(now + self._limits.keepalive_timeout, _T_KEEPALIVE)
        elif reader.state == HEAD:
            self._set_deadline(now + self._limits.header_timeout, _T_HEAD)
        else:
            self._set_deadline(now + self._limits.body_timeout, _T_BODY)

    # -- closing and timers ------------------------------------------------------------------

    def _close(self) -> None:
        """Close after what was written, lingering: send our FIN, then read and drop what the client
        still sends for a moment, so that closing on unread bytes (a refused body, pipelined
        requests) does not reset the connection before the client has read the answer."""
        transport = self._transport
        if transport is None or self.lost:
            return
        self._reader.stopped = True
        self._reader.tunnel_data = None  # a refused CONNECT: what still comes is dropped
        if transport.can_write_eof():
            transport.write_eof()
            if self._reading_paused:
                self._reading_paused = False
                transport.resume_reading()
            self._set_deadline(self._loop.time() + _LINGER_SECONDS, _T_LINGER)
        else:
            transport.close()

    def shutdown(self) -> None:
        """Server is closing: close now if idle, else after the response being written."""
        self._closing = True
        if self._current is None:
            self._reader.stopped = True
            if self._transport is not None:
                self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once (the grace period of a server close is over)."""
        if self._tunnel is not None:
            self._tunnel.finish("gateway", abort=True)
        if self._transport is not None and not self.lost:
            self._transport.abort()

    def _set_deadline(self, when: float, kind: int) -> None:
        self._deadline = when
        self._deadline_kind = kind
        if self._timer is None or when < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = when
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self.lost:
            return
        if self._loop.time() < deadline:
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)
            return
        self._deadline = None
        if self._deadline_kind == _T_LINGER or self._reader.state == IDLE:
            if self._transport is not None:
                self._transport.close()  # nothing of a request was received: just close
            return
        waited = "request head" if self._reader.state == HEAD else "next piece of the request body"
        self._reader.refuse(408, "request_timeout", f"the client took too long to send the {waited}")
        self._next()
