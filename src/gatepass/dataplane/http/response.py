"""An upstream response: status and headers at once, the body as it arrives.

The connection reading the response (see :mod:`~gatepass.dataplane.http.upstream`) pushes body
pieces in with ``_feed``; the consumer takes them with ``async for`` or :meth:`~UpstreamResponse.read`.
Taking everything buffered tells the connection (``drained``) to read its socket again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import Protocol

from gatepass.dataplane.http.wire import Headers
from gatepass.errors import UpstreamError, UpstreamProtocolError

__all__ = ["BodySource", "UpstreamResponse"]


class BodySource(Protocol):
    """What a response needs from the connection its body comes from."""

    @property
    def label(self) -> str: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the connection runs on (asking asyncio for it costs a getpid call)."""
        ...

    def drained(self) -> None: ...

    def abandon(self) -> None: ...


class UpstreamResponse:
    """The status and headers of an upstream response, and its body as it arrives.

    Read the body whole with :meth:`read`, or piece by piece with ``async for chunk in response``
    (chunked coding decoded, each piece yielded as soon as it arrives). :meth:`aclose` drops the
    rest; a connection whose body was not fully received is closed, not reused.
    """

    __slots__ = ("_conn", "_done", "_error", "_label", "_pieces", "_size", "_waiter", "headers", "reason", "status")

    def __init__(self, conn: BodySource, status: int, reason: str, headers: Headers) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        """Header fields as received (names lowercased), order and repeats kept."""
        self._conn: BodySource | None = conn
        self._label = conn.label
        self._pieces: deque[bytes] = deque()
        self._size = 0
        self._done = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (give it lowercase), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return f"UpstreamResponse({self.status} {self.reason!r} from {self._label})"

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body; more than ``limit`` bytes raises UpstreamProtocolError (and closes)."""
        if self._done and self._error is None and self._conn is None:
            # Fast path: the whole body has already arrived.
            pieces = self._pieces
            data = pieces.popleft() if len(pieces) == 1 else b"".join(pieces)
            pieces.clear()
            self._size = 0
            if limit is not None and len(data) > limit:
                raise self._too_large(limit)
            return data
        parts: list[bytes] = []
        total = 0
        async for piece in self:
            total += len(piece)
            if limit is not None and total > limit:
                await self.aclose()
                raise self._too_large(limit)
            parts.append(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _too_large(self, limit: int) -> UpstreamProtocolError:
        return UpstreamProtocolError(
            f"upstream {self._label} sent a response body larger than {limit} bytes; "
            "the response was dropped: raise the limit if such bodies are expected"
        )

    def __aiter__(self) -> UpstreamResponse:
        return self

    async def __anext__(self) -> bytes:
        while True:
            pieces = self._pieces
            if pieces:
                data = pieces.popleft() if len(pieces) == 1 else b"".join(pieces)
                pieces.clear()
                self._size = 0
                if self._conn is not None:
                    self._conn.drained()
                return data
            if self._error is not None:
                raise self._error
            if self._done:
                raise StopAsyncIteration
            conn = self._conn
            assert conn is not None  # it goes only with _done or _error, both handled above
            self._waiter = conn.loop.create_future()
            try:
                await self._waiter
            except asyncio.CancelledError:
                await self.aclose()  # a read given up half-way leaves the connection out of step
                raise
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        """Stop reading; if the body has not fully arrived, its connection is closed."""
        conn, self._conn = self._conn, None
        if not self._done:
            if conn is not None:
                conn.abandon()
            if self._error is None:
                self._error = UpstreamProtocolError(
                    f"the response from upstream {self._label} was closed before its whole body was read"
                )
        self._done = True
        self._pieces.clear()
        self._size = 0

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- fed by the connection ---------------------------------------------------------------

    def _feed(self, piece: bytes) -> int:
        if not self._done:
            self._pieces.append(piece)
            self._size += len(piece)
            self._wake()
        return self._size

    def _finish(self) -> None:
        self._done = True
        self._conn = None
        self._wake()

    def _fail(self, error: UpstreamError) -> None:
        if not self._done:
            self._error = error
            self._conn = None
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
