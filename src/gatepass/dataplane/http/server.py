"""The data plane's HTTP/1.1 server: asyncio Protocols over httptools (llhttp), uvloop when present.

::

    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        writer.send(200, [(b"content-type", b"text/plain")], b"hello")

    server = await start_server(handler, "127.0.0.1", 8790)
    ...
    await server.close(grace=10)

The handler gets each request with its whole body read (bounded by :class:`ServerLimits`) and
answers through its :class:`ResponseWriter`. With ``allow_connect`` a CONNECT request goes to the
handler too, which refuses it or turns the connection into a tunnel (:meth:`ResponseWriter.tunnel`).
Errors of the protocol itself (malformed, too large, too slow, smuggling-shaped, CONNECT without
``allow_connect``) are answered by the server with a body made by ``error_body``, and the
connection closes. A handler that raises gets a 500 and its connection closes; one that returns
without answering gets a 500. Requests on one connection are answered in order (see
:mod:`gatepass.dataplane.http.connection`).
"""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType

from gatepass.dataplane.http.connection import Handler, ServerConnection, ServerContext
from gatepass.dataplane.http.messages import ErrorBody, IncomingRequest, ServerLimits, default_error_body
from gatepass.dataplane.http.wire import protocol_factory
from gatepass.dataplane.http.writer import ClientDisconnected, ResponseWriter

__all__ = [
    "ClientDisconnected",
    "ErrorBody",
    "Handler",
    "HttpServer",
    "IncomingRequest",
    "ResponseWriter",
    "ServerLimits",
    "default_error_body",
    "new_event_loop",
    "start_server",
]


class HttpServer:
    """A listening server; made by :func:`start_server`."""

    def __init__(self, server: asyncio.Server, ctx: ServerContext) -> None:
        self._server = server
        self._ctx = ctx
        self._closed = False

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        return tuple(self._server.sockets)

    @property
    def port(self) -> int:
        """The port of the first listening socket (useful after binding port 0)."""
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def in_flight(self) -> int:
        """Handlers running now (each is one request being answered)."""
        return len(self._ctx.tasks)

    @property
    def connections(self) -> int:
        """Client connections open now."""
        return len(self._ctx.connections)

    async def serve_forever(self) -> None:
        """Wait until the server is closed (it is already accepting)."""
        await self._server.serve_forever()

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting, close idle connections, let running handlers finish for up to ``grace``
        seconds (their responses complete, with ``connection: close``), then drop the rest."""
        if self._closed:
            return
        self._closed = True
        ctx = self._ctx
        ctx.closing = True
        self._server.close()
        for conn in list(ctx.connections):
            conn.shutdown()
        if ctx.tasks:
            await asyncio.wait(set(ctx.tasks.values()), timeout=grace)
        for conn in list(ctx.connections):
            conn.abort()
        left = set(ctx.tasks.values())
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=1.0)
        await asyncio.sleep(0)  # let aborted transports report connection_lost
        await self._server.wait_closed()

    async def __aenter__(self) -> HttpServer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def start_server(
    handler: Handler,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    sock: socket.socket | None = None,
    limits: ServerLimits = ServerLimits(),  # noqa: B008 - frozen, so one shared default is safe
    error_body: ErrorBody | None = None,
    reuse_port: bool = False,
    backlog: int = 1024,
    allow_connect: bool = False,
) -> HttpServer:
    """Listen on ``host:port`` (or on an already bound ``sock``) and serve each request with ``handler``."""
    loop = asyncio.get_running_loop()
    ctx = ServerContext(handler, limits, error_body, allow_connect)

    factory = protocol_factory(lambda: ServerConnection(ctx))
    if sock is not None:
        server = await loop.create_server(factory, sock=sock, backlog=backlog)
    else:
        server = await loop.create_server(factory, host, port, reuse_port=reuse_port or None, backlog=backlog)
    return HttpServer(server, ctx)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop event loop when uvloop is installed, else asyncio's default one.

    For entry points (``asyncio.run(main(), loop_factory=...)`` or ``loop.run_until_complete``);
    importing this module changes no policy.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
