"""CONNECT tunnels in the HTTP layer: bytes both ways, pipelined bytes, flow control, half-close, timeouts."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from gatepass.dataplane.http import (
    HttpServer,
    IncomingRequest,
    ResponseWriter,
    ServerLimits,
    TunnelStats,
    TunnelUpstream,
    connect_address,
    start_server,
)
from gatepass.errors import UpstreamConnectError, UpstreamConnectTimeoutError
from tests.dataplane.http.helpers import WAIT, RawClient, read_head, serving

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def echo_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echoes until EOF, then closes."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@asynccontextmanager
async def peer_server(peer: Peer) -> AsyncIterator[int]:
    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


class TunnelProxy:
    """A handler that tunnels every CONNECT to 127.0.0.1:PORT (the port of the target) and keeps the stats."""

    def __init__(self, idle_timeout: float = 5.0) -> None:
        self.idle_timeout = idle_timeout
        self.stats: list[TunnelStats] = []
        self.ended = asyncio.Event()

    async def __call__(self, request: IncomingRequest, writer: ResponseWriter) -> None:
        if request.method != "CONNECT":
            writer.send(200, [], b"plain")
            return
        port = int(request.target.rpartition(b":")[2])
        if port == 1:
            writer.send(403, [(b"x-refused", b"yes")], b"no")
            return
        upstream = await connect_address("127.0.0.1", port, TunnelUpstream, timeout=WAIT, label="test")
        tunnel = writer.tunnel(upstream, [(b"x-tunnel", b"1")], idle_timeout=self.idle_timeout)
        try:
            await tunnel.wait()
        finally:
            self.stats.append(tunnel.stats)
            self.ended.set()


@asynccontextmanager
async def proxy(handler: TunnelProxy, **kwargs: object) -> AsyncIterator[HttpServer]:
    async with serving(handler, allow_connect=True, **kwargs) as server:  # type: ignore[arg-type]
        yield server


def connect_line(port: int) -> bytes:
    return f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def established(client: RawClient) -> list[tuple[str, str]]:
    status, reason, headers = await read_head(client.reader)
    assert (status, reason) == (200, "Connection established")
    assert not any(name in ("content-length", "transfer-encoding", "connection") for name, _ in headers)
    return headers


async def test_bytes_flow_both_ways_and_pipelined_bytes_are_forwarded() -> None:
    handler = TunnelProxy()
    async with peer_server(echo_peer) as port, proxy(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(connect_line(port) + b"sent with the head|")
        assert ("x-tunnel", "1") in await established(client)
        assert await asyncio.wait_for(client.reader.readexactly(19), WAIT) == b"sent with the head|"
        await client.send(b"GET / HTTP/1.1\r\n\r\n")  # inside the tunnel it is just bytes
        assert await asyncio.wait_for(client.reader.readexactly(18), WAIT) == b"GET / HTTP/1.1\r\n\r\n"
        await client.close()
        await asyncio.wait_for(handler.ended.wait(), WAIT)
    assert handler.stats[0].bytes_up == handler.stats[0].bytes_down == 37
    assert handler.stats[0].closed_by == "client"


async def test_a_large_transfer_arrives_whole_both_ways() -> None:
    size = 24 * 1024 * 1024
    payload = hashlib.sha256(b"seed").digest() * (size // 32)
    handler = TunnelProxy()
    async with peer_server(echo_peer) as port, proxy(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(connect_line(port))
        await established(client)

        async def send() -> None:
            for i in range(0, size, 1 << 20):
                await client.send(payload[i : i + (1 << 20)])
            client.writer.write_eof()

        sender = asyncio.create_task(send())
        received = await asyncio.wait_for(client.reader.read(-1), 30)  # until the echo peer's EOF
        await sender
        assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
        await asyncio.wait_for(handler.ended.wait(), WAIT)
    assert (handler.stats[0].bytes_up, handler.stats[0].bytes_down) == (size, size)


async def test_a_client_that_does_not_read_stops_the_upstream_being_read() -> None:
    size = 48 * 1024 * 1024  # well above what the kernel's socket buffers hold on loopback
    upstream_writers: list[asyncio.StreamWriter] = []
    sent = asyncio.Event()

    async def firehose(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_writers.append(writer)
        writer.write(b"x" * size)
        await writer.drain()
        sent.set()
        writer.close()

    handler = TunnelProxy()
    async with peer_server(firehose) as port, proxy(handler) as server:
        client = await RawClient.connect(server.port, limit=64 * 1024)
        await client.send(connect_line(port))
        await established(client)
        client.writer.transport.pause_reading()  # type: ignore[attr-defined]
        await asyncio.sleep(0.5)
        # The gateway stopped reading: most of it still waits on the upstream's side.
        assert not sent.is_set()
        assert upstream_writers[0].transport.get_write_buffer_size() > size // 2
        client.writer.transport.resume_reading()  # type: ignore[attr-defined]
        received = 0
        while chunk := await asyncio.wait_for(client.reader.read(1 << 20), WAIT):
            received += len(chunk)
        assert received == size
        await client.close()  # the upstream's EOF half-closed the tunnel; the client's close ends it
        await asyncio.wait_for(handler.ended.wait(), WAIT)
    assert handler.stats[0].closed_by == "upstream"


async def test_half_close_is_passed_on_both_ways() -> None:
    async def answer_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(-1)  # until the client's EOF arrives through the tunnel
        writer.write(b"got " + data)
        await writer.drain()
        writer.close()

    handler = TunnelProxy()
    async with peer_server(answer_after_eof) as port, proxy(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(connect_line(port) + b"question")
        await established(client)
        client.writer.write_eof()
        assert await asyncio.wait_for(client.reader.read(-1), WAIT) == b"got question"
        await asyncio.wait_for(handler.ended.wait(), WAIT)
    assert handler.stats[0].closed_by == "client"


async def test_a_server_first_upstream_is_heard_and_its_eof_reaches_the_client() -> None:
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hello\r\n")
        await writer.drain()
        writer.close()

    handler = TunnelProxy()
    async with peer_server(banner) as port, proxy(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(connect_line(port))
        await established(client)
        assert await asyncio.wait_for(client.reader.read(-1), WAIT) == b"220 hello\r\n"
        await client.close()
        await asyncio.wait_for(handler.ended.wait(), WAIT)
    assert handler.stats[0].closed_by == "upstream"


async def test_an_idle_tunnel_is_dropped() -> None:
    handler = TunnelProxy(idle_timeout=0.3)
    async with peer_server(echo_peer) as port, proxy(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(connect_line(port))
        await established(client)
        await client.send(b"ping")
        assert await asyncio.wait_for(client.reader.readexactly(4), WAIT) == b"ping"
        assert await client.closed_by_peer()
        await asyncio.wait_for(handler.ended.wait(), WAIT)
    assert handler.stats[0].closed_by == "idle"


async def test_a_refused_connect_closes_and_drops_the_pipelined_bytes() -> None:
    handler = TunnelProxy()
    async with proxy(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(connect_line(1) + b"\x16\x03\x01 not for anyone")
        response = await client.response()
        assert (response.status, response.body, response.header("connection")) == (403, b"no", "close")
        assert await client.closed_by_peer()
        assert not handler.stats


async def test_requests_before_a_connect_are_answered_first() -> None:
    handler = TunnelProxy()
    async with peer_server(echo_peer) as port, proxy(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + connect_line(port) + b"after")
        assert (await client.response()).body == b"plain"
        await established(client)
        assert await asyncio.wait_for(client.reader.readexactly(5), WAIT) == b"after"
        await client.close()


async def test_a_client_eof_right_after_the_connect_head_is_passed_on() -> None:
    async def answer_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"saw " + await reader.read(-1))
        await writer.drain()
        writer.close()

    handler = TunnelProxy()
    async with peer_server(answer_after_eof) as port, proxy(handler) as server:
        client = await RawClient.connect(server.port)
        client.writer.write(connect_line(port) + b"all")
        client.writer.write_eof()
        await established(client)
        assert await asyncio.wait_for(client.reader.read(-1), WAIT) == b"saw all"


@pytest.mark.parametrize(
    "head",
    [
        b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
async def test_a_connect_with_a_body_is_refused(head: bytes) -> None:
    async with proxy(TunnelProxy()) as server:
        client = await RawClient.connect(server.port)
        await client.send(head)
        response = await client.response()
        assert (response.status, json.loads(response.body)["error"]["type"]) == (400, "bad_request")


async def test_a_slow_connect_head_times_out() -> None:
    async with proxy(TunnelProxy(), limits=ServerLimits(header_timeout=0.2)) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0")
        assert (await client.response()).status == 408


async def test_closing_the_server_ends_open_tunnels() -> None:
    handler = TunnelProxy()
    async with peer_server(echo_peer) as port:
        server = await start_server(handler, "127.0.0.1", 0, allow_connect=True)
        client = await RawClient.connect(server.port)
        await client.send(connect_line(port))
        await established(client)
        assert server.in_flight == 1
        await asyncio.wait_for(server.close(grace=0.2), WAIT)
        assert await client.closed_by_peer()
        assert handler.stats[0].closed_by == "gateway"  # the grace ran out


async def test_connect_address_refuses_names_and_reports_refused_ports() -> None:
    with pytest.raises(ValueError):
        await connect_address("localhost", 80, TunnelUpstream, timeout=1, label="localhost:80")
    async with peer_server(echo_peer) as port:
        pass  # the port is closed again
    with pytest.raises(UpstreamConnectError) as info:
        await connect_address("127.0.0.1", port, TunnelUpstream, timeout=1, label=f"x:{port}")
    assert f"cannot connect to x:{port} (127.0.0.1)" in info.value.message
    with pytest.raises(UpstreamConnectTimeoutError) as late:
        await connect_address("127.0.0.1", port, TunnelUpstream, timeout=1e-9, label=f"x:{port}")
    assert "took longer than" in late.value.message


async def test_what_an_upstream_sent_and_its_eof_before_the_join_reach_the_client() -> None:
    async def banner_and_go(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 bye\r\n")
        writer.close()

    class SlowToJoin(TunnelProxy):
        async def __call__(self, request: IncomingRequest, writer: ResponseWriter) -> None:
            port = int(request.target.rpartition(b":")[2])
            upstream = await connect_address("127.0.0.1", port, TunnelUpstream, timeout=WAIT, label="test")
            while not upstream.early_eof:  # the upstream has said its piece and closed before the 200
                await asyncio.sleep(0.01)
            tunnel = writer.tunnel(upstream, idle_timeout=self.idle_timeout)
            self.stats.append(await tunnel.wait())

    handler = SlowToJoin()
    async with peer_server(banner_and_go) as port, proxy(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(connect_line(port))
        await established(client)
        assert await asyncio.wait_for(client.reader.read(-1), WAIT) == b"220 bye\r\n"
        await client.close()
        await asyncio.sleep(0.1)
    assert handler.stats[0].closed_by == "upstream"
