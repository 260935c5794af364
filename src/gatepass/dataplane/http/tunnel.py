"""CONNECT tunnels: raw bytes both ways between a client connection and an upstream TCP connection.

::

    upstream = await connect_address(address, 443, TunnelUpstream, timeout=10, label="example.com:443")
    tunnel = writer.tunnel(upstream, headers, idle_timeout=300)   # sends "200 Connection established"
    stats = await tunnel.wait()

:func:`connect_address` connects to an IP address only (nothing is resolved). Once joined by a
:class:`Tunnel`:

* Bytes the client sent after its CONNECT head go upstream first, and bytes the upstream sent before
  the tunnel started (server-first protocols) go to the client first.
* Flow control: while one side's write buffer is full, the other side's socket is not read.
* Half-close: an EOF from one side is passed on as an EOF to the other; the tunnel ends when both
  sides have sent theirs, or when either side closes or resets.
* Idle timeout: no byte in either direction for ``idle_timeout`` seconds drops both connections;
  so does a peer that leaves closing bytes unread for as long.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar, cast

from gatepass.dataplane.http.wire import protocol_factory
from gatepass.errors import UpstreamConnectError, UpstreamConnectTimeoutError

__all__ = ["Tunnel", "TunnelStats", "TunnelUpstream", "connect_address"]

_EARLY_MAX: Final = 256 * 1024  # upstream bytes held before the tunnel starts; then its socket is not read

P = TypeVar("P")  # a protocol: by its methods (UpstreamConnection does not subclass asyncio.Protocol)


async def connect_address(address: str, port: int, factory: Callable[[], P], *, timeout: float, label: str) -> P:
    """Open a TCP connection to the IP ``address`` (a name raises ValueError: nothing is resolved here).

    Raises UpstreamConnectTimeoutError after ``timeout`` seconds and UpstreamConnectError when the
    connection is refused or unreachable; ``label`` names the destination in their messages.
    """
    ip = ipaddress.ip_address(address)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            # AI_NUMERICHOST: the resolver may parse the address but never look a name up.
            _, protocol = await loop.create_connection(
                protocol_factory(factory), str(ip), port, flags=socket.AI_NUMERICHOST
            )
    except TimeoutError as exc:
        raise UpstreamConnectTimeoutError(
            f"connecting to {label} ({ip}) took longer than {timeout:g} s; the host may be down or filtered"
        ) from exc
    except OSError as exc:
        raise UpstreamConnectError(
            f"cannot connect to {label} ({ip}): {exc.strerror or type(exc).__name__}; check the host and port"
        ) from exc
    return cast(P, protocol)


@dataclass(frozen=True, slots=True)
class TunnelStats:
    """How a tunnel went: bytes each way, how long it lasted, and which side ended it
    ("client", "upstream", "idle" or "gateway")."""

    bytes_up: int
    bytes_down: int
    seconds: float
    closed_by: str


class TunnelUpstream(asyncio.Protocol):
    """The upstream end of a tunnel; holds what arrives until a :class:`Tunnel` joins it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.tunnel: Tunnel | None = None
        self.early = bytearray()
        self.early_eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.upstream_data(data)
            return
        self.early += data
        if len(self.early) > _EARLY_MAX and self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.tunnel is not None:
            return self.tunnel.upstream_eof()
        self.early_eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.tunnel is not None:
            self.tunnel.finish("upstream")

    def pause_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.upstream_full(True)

    def resume_writing(self) -> None:
        if self.tunnel is not None:
            self.tunnel.upstream_full(False)

    def close(self) -> None:
        """Drop the connection (a tunnel that will not start)."""
        if self.transport is not None and not self.lost:
            self.transport.abort()


class Tunnel:
    """Joins a client transport to a :class:`TunnelUpstream`; made by the server connection."""

    def __init__(self, client: asyncio.Transport, upstream: TunnelUpstream, idle_timeout: float) -> None:
        assert upstream.transport is not None
        self.client = client
        self.upstream = upstream
        self._up = upstream.transport
        self._loop = asyncio.get_running_loop()
        self._idle = idle_timeout
        self._started = time.monotonic()
        self._last = self._loop.time()
        self._eofs = 0
        self._up_full = False
        self.bytes_up = 0
        self.bytes_down = 0
        self.closed_by: str | None = None
        self._done: asyncio.Future[TunnelStats] = self._loop.create_future()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, first: bytes, client_eof: bool) -> None:
        """Deliver what each side sent before the join, then let bytes flow."""
        upstream = self.upstream
        upstream.tunnel = self
        self._timer = self._loop.call_at(self._last + self._idle, self._on_timer)
        if first:
            self.client_data(first)
        early, upstream.early = bytes(upstream.early), bytearray()
        if early:
            self.upstream_data(early)
            if not self._up.is_closing():
                self._up.resume_reading()
        if upstream.lost:
            self.finish("upstream")  # what it sent still reaches the client: close() writes it first
            return
        if upstream.early_eof:
            self.upstream_eof()
        if client_eof:
            self.client_eof()
        elif not self._up_full and not self.client.is_closing():
            self.client.resume_reading()

    async def wait(self) -> TunnelStats:
        """Return the tunnel's stats once it has ended; cancelling the wait closes the tunnel."""
        try:
            return await asyncio.shield(self._done)
        except asyncio.CancelledError:
            self.finish("gateway", abort=True)
            raise

    @property
    def stats(self) -> TunnelStats:
        """The stats so far (final once the tunnel has ended)."""
        if self._done.done():
            return self._done.result()
        return TunnelStats(self.bytes_up, self.bytes_down, time.monotonic() - self._started, self.closed_by or "")

    # -- events from either side ---------------------------------------------------------------

    def client_data(self, data: bytes) -> None:
        self.bytes_up += len(data)
        self._last = self._loop.time()
        if not self._up.is_closing():
            self._up.write(data)

    def upstream_data(self, data: bytes) -> None:
        self.bytes_down += len(data)
        self._last = self._loop.time()
        if not self.client.is_closing():
            self.client.write(data)

    def client_eof(self) -> bool:
        self.closed_by = self.closed_by or "client"
        self._pass_eof(self._up)
        return True

    def upstream_eof(self) -> bool:
        self.closed_by = self.closed_by or "upstream"
        self._pass_eof(self.client)
        return True

    def _pass_eof(self, to: asyncio.Transport) -> None:
        self._eofs += 1
        if self._eofs >= 2 or to.is_closing() or not to.can_write_eof():
            self.finish(self.closed_by or "client")
        else:
            to.write_eof()

    def client_full(self, full: bool) -> None:
        """The client's write buffer filled up (True) or drained (False): stop or go on reading upstream."""
        if not self._up.is_closing():
            if full:
                self._up.pause_reading()
            else:
                self._up.resume_reading()

    def upstream_full(self, full: bool) -> None:
        """The upstream's write buffer filled up or drained: stop or go on reading the client."""
        self._up_full = full
        if not self.client.is_closing():
            if full:
                self.client.pause_reading()
            else:
                self.client.resume_reading()

    def finish(self, by: str, *, abort: bool = False) -> None:
        """End the tunnel: both connections close once what they hold is written (or at once with ``abort``)."""
        if self._done.done():
            return
        self.closed_by = self.closed_by or by
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending = False
        for transport in (self.client, self._up):
            if abort:
                transport.abort()
            elif not transport.is_closing():
                pending = pending or transport.get_write_buffer_size() > 0
                transport.close()
        if pending:  # a peer that leaves the rest unread must not hold its connection open for ever
            self._timer = self._loop.call_later(self._idle, self._abort)
        self._done.set_result(
            TunnelStats(self.bytes_up, self.bytes_down, time.monotonic() - self._started, self.closed_by)
        )

    def _abort(self) -> None:
        for transport in (self.client, self._up):
            transport.abort()

    def _on_timer(self) -> None:
        due = self._last + self._idle
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._on_timer)
            return
        self._timer = None
        self.closed_by = "idle"
        self.finish("idle", abort=True)
