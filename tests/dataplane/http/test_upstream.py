"""UpstreamResponse and its connection: streaming, flow control, bodies cut short, odd statuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gatepass.dataplane.http.client import Origin, UpstreamPool
from gatepass.dataplane.http.upstream import BUFFER_HIGH
from gatepass.errors import UpstreamProtocolError, UpstreamTimeoutError

from .helpers import WAIT, ScriptedUpstream, ok_response, scripted_upstream

SECRET = "sk-test-" + "7" * 24
CREDENTIALS = [(b"authorization", b"Bearer " + SECRET.encode())]


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    p = UpstreamPool(read_timeout=2)
    yield p
    await p.close()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def test_stream_pieces_arrive_before_the_upstream_has_finished(pool: UpstreamPool) -> None:
    gates = [asyncio.Event(), asyncio.Event()]

    async def sse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for i, gate in enumerate(gates):
            writer.write(chunk(b"data: %d\n\n" % i))
            await writer.drain()
            await gate.wait()  # the next piece comes only once the client has seen this one
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with scripted_upstream(sse) as up:
        response = await pool.request(Origin.parse(up.url), "POST", b"/v1/messages", [], b"{}")
        assert response.header(b"content-type") == b"text/event-stream"
        received = []
        async for piece in response:
            received.append(piece)
            gates[len(received) - 1].set()
        assert received == [b"data: 0\n\n", b"data: 1\n\n"]
        assert pool.idle_connections == 1


class Blaster(asyncio.Protocol):
    """An upstream that answers with ``total`` bytes as fast as its transport lets it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0
        self.paused = False
        self.pauses = 0
        self.resumes = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data and self.transport is not None:
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % self.total)
            self._pump()

    def pause_writing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_writing(self) -> None:
        self.paused = False
        self.resumes += 1
        self._pump()

    def _pump(self) -> None:
        piece = b"b" * 65536
        while not self.paused and self.sent < self.total and self.transport is not None:
            self.transport.write(piece)
            self.sent += len(piece)


async def test_a_slow_reader_pauses_the_upstream(pool: UpstreamPool) -> None:
    total = 48 * 1024 * 1024
    blaster = Blaster(total)
    server = await asyncio.get_running_loop().create_server(lambda: blaster, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        response = await pool.request(Origin.parse(f"http://127.0.0.1:{port}"), "GET", b"/big", [])
        first = await response.__anext__()
        await asyncio.sleep(0.3)  # the consumer stalls; the upstream runs into a full pipe
        assert blaster.paused and blaster.pauses >= 1
        assert blaster.sent < total
        assert response._size <= BUFFER_HIGH + 512 * 1024  # bounded buffering in the gateway
        received = len(first)
        async for piece in response:
            received += len(piece)
        assert received == total
        assert blaster.resumes >= 1
    finally:
        server.close()


async def test_a_response_nobody_reads_is_dropped_after_the_read_timeout() -> None:
    blaster = Blaster(48 * 1024 * 1024)
    server = await asyncio.get_running_loop().create_server(lambda: blaster, "127.0.0.1", 0)
    pool = UpstreamPool(read_timeout=0.3)
    try:
        port = server.sockets[0].getsockname()[1]
        response = await pool.request(Origin.parse(f"http://127.0.0.1:{port}"), "GET", b"/big", [])
        await asyncio.sleep(0.7)  # nobody reads: the connection is not held forever
        assert pool.idle_connections == 0
        with pytest.raises(UpstreamTimeoutError, match="was not read for"):
            async for _ in response:
                pass
    finally:
        await pool.close()
        server.close()


async def test_a_body_cut_short_is_a_protocol_error(pool: UpstreamPool) -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()

    async with scripted_upstream(short) as up:
        response = await pool.request(Origin.parse(up.url), "POST", b"/", CREDENTIALS, b"{}")
        with pytest.raises(UpstreamProtocolError, match="before the end of the response body") as info:
            await response.read()
        assert SECRET not in str(info.value) and f"127.0.0.1:{up.port}" in str(info.value)


async def test_a_chunked_body_cut_short_is_a_protocol_error(pool: UpstreamPool) -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.sleep(0.05)

    async with scripted_upstream(short) as up:
        response = await pool.request(Origin.parse(up.url), "POST", b"/", [], b"{}")
        pieces = []
        with pytest.raises(UpstreamProtocolError, match="body is incomplete"):
            async for piece in response:
                pieces.append(piece)
        assert pieces == [b"data: 1\n\n"]


async def test_a_stream_that_stalls_times_out_between_pieces() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk(b"first"))
        await writer.drain()
        await reader.read()

    pool = UpstreamPool(read_timeout=0.2)
    try:
        async with scripted_upstream(stall) as up:
            response = await pool.request(Origin.parse(up.url), "GET", b"/", [])
            assert await response.__anext__() == b"first"
            with pytest.raises(UpstreamTimeoutError, match=r"did not send the rest of the response within 0\.2 s"):
                await response.__anext__()
    finally:
        await pool.close()


async def test_a_reset_mid_body_is_a_protocol_error(pool: UpstreamPool) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nxx")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.get_extra_info("socket").setsockopt(1, 13, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # SO_LINGER 0
        writer.transport.abort()

    async with scripted_upstream(reset) as up:
        response = await pool.request(Origin.parse(up.url), "GET", b"/", [])
        with pytest.raises(UpstreamProtocolError, match=r"(reset|closed) the connection"):
            await response.read()


async def test_informational_responses_are_skipped(pool: UpstreamPool) -> None:
    async def early_hints(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        while (await up.next_request(reader)) is not None:
            writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n" + ok_response(b"final"))
            await writer.drain()

    async with scripted_upstream(early_hints) as up:
        response = await pool.request(Origin.parse(up.url), "GET", b"/", [])
        assert (response.status, response.reason, await response.read()) == (200, "OK", b"final")
        assert response.header(b"link") is None


async def test_a_body_delimited_by_close(pool: UpstreamPool) -> None:
    async def old_style(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        await writer.drain()

    async with scripted_upstream(old_style) as up:
        response = await pool.request(Origin.parse(up.url), "GET", b"/", [])
        assert await response.read() == b"until the end"
        assert pool.idle_connections == 0


@pytest.mark.parametrize("status", [204, 304])
async def test_statuses_without_a_body(pool: UpstreamPool, status: int) -> None:
    async def bodiless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        while (await up.next_request(reader)) is not None:
            writer.write(b"HTTP/1.1 %d X\r\ncontent-length: 0\r\n\r\n" % status)
            await writer.drain()

    async with scripted_upstream(bodiless) as up:
        origin = Origin.parse(up.url)
        for _ in range(2):
            response = await asyncio.wait_for(pool.request(origin, "GET", b"/", []), WAIT)
            assert (response.status, await response.read()) == (status, b"")
        assert up.connections == 1


async def test_a_head_answer_with_a_length_is_not_waited_for(pool: UpstreamPool) -> None:
    async def head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        while (request := await up.next_request(reader)) is not None:
            if request.request_line.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")
            else:
                writer.write(ok_response(b"after"))
            await writer.drain()

    async with scripted_upstream(head) as up:
        origin = Origin.parse(up.url)
        response = await asyncio.wait_for(pool.request(origin, "HEAD", b"/", []), WAIT)
        assert response.header(b"content-length") == b"1234"
        assert await response.read() == b""
        assert await (await pool.request(origin, "GET", b"/", [])).read() == b"after"
        assert up.connections == 1
