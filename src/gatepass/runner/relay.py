"""Byte relays for ``--sandbox``: the sandbox's only way out is a Unix socket to the gateway.

Inside the sandbox (a network namespace with loopback only), :func:`serve_tcp_to_unix` listens on
loopback and carries each connection to the Unix socket; outside, :func:`serve_unix_to_tcp` accepts
on that socket and connects each stream to the gateway's TCP address. Each direction copies at most
:data:`CHUNK` bytes at a time and waits for the other side to take them (``drain``), so a slow reader
holds back its writer instead of filling memory. When either side closes or fails, both are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

__all__ = ["CHUNK", "Relay", "serve_tcp_to_unix", "serve_unix_to_tcp", "splice"]

log = logging.getLogger("gatepass.runner.relay")

CHUNK: Final = 64 * 1024
CONNECT_TIMEOUT: Final = 10.0
MAX_CONNECTIONS: Final = 256

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()


async def splice(one: Streams, other: Streams) -> None:
    """Copy both ways until either side ends (EOF or error); then close both."""
    tasks = [asyncio.ensure_future(_copy(one[0], other[1])), asyncio.ensure_future(_copy(other[0], one[1]))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        await asyncio.gather(_close(one[1]), _close(other[1]))


class Relay:
    """Connects each accepted stream to a target (``connect``), at most ``max_connections`` at once."""

    def __init__(self, connect: Callable[[], Awaitable[Streams]], *, max_connections: int = MAX_CONNECTIONS) -> None:
        self._connect = connect
        self._max = max_connections
        self._active: set[asyncio.Task[None]] = set()
        self._closing = False
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._active) >= self._max:
            log.warning("relay: %d connections open already; refused one more", self._max)
            await _close(writer)
            return
        self._active.add(task)
        try:
            try:
                target = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                log.warning("relay: could not reach the gateway (%s)", exc.__class__.__name__)
                await _close(writer)
                return
            await splice((reader, writer), target)
        except asyncio.CancelledError:
            if not self._closing:
                raise
            await _close(writer)  # ended by close(): quietly (asyncio would log a cancelled handler)
        finally:
            self._active.discard(task)

    async def close(self) -> None:
        """Stop accepting and end every relayed connection."""
        self._closing = True
        if self.server is not None:
            self.server.close()
        for task in list(self._active):
            task.cancel()
        for task in list(self._active):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.server is not None:
            await self.server.wait_closed()


async def serve_unix_to_tcp(path: str, host: str, port: int) -> Relay:
    """Outside the sandbox: accept on the Unix socket ``path``, connect each stream to ``host:port``."""
    relay = Relay(lambda: asyncio.open_connection(host, port))
    relay.server = await asyncio.start_unix_server(relay.handle, path=path)
    return relay


async def serve_tcp_to_unix(host: str, port: int, path: str) -> Relay:
    """Inside the sandbox: accept on ``host:port``, connect each stream to the Unix socket ``path``."""
    relay = Relay(lambda: asyncio.open_unix_connection(path))
    relay.server = await asyncio.start_server(relay.handle, host, port)
    return relay
