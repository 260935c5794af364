"""The sandbox's relays: bytes intact both ways, bounded buffers, both sides closed together."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gatepass.runner.relay import CHUNK, Relay, serve_tcp_to_unix, serve_unix_to_tcp, splice


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[tuple[str, int]]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    yield "127.0.0.1", server.sockets[0].getsockname()[1]
    server.close()


def _port(relay: Relay) -> int:
    assert relay.server is not None
    return int(relay.server.sockets[0].getsockname()[1])


async def _chain(tmp_path: Path, host: str, port: int) -> tuple[Relay, Relay]:
    """TCP (the sandbox side) -> Unix socket -> TCP (the gateway)."""
    path = str(tmp_path / "gateway.sock")
    outside = await serve_unix_to_tcp(path, host, port)
    inside = await serve_tcp_to_unix("127.0.0.1", 0, path)
    return inside, outside


async def test_bytes_go_through_both_relays_intact_both_ways(tmp_path: Path, echo: tuple[str, int]) -> None:
    inside, outside = await _chain(tmp_path, *echo)
    try:
        payload = os.urandom(3 * 1024 * 1024 + 17)
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(inside))

        async def send() -> None:
            for i in range(0, len(payload), 100_000):
                writer.write(payload[i : i + 100_000])
                await writer.drain()

        sending = asyncio.ensure_future(send())
        received = await asyncio.wait_for(reader.readexactly(len(payload)), 60)
        await sending
        assert received == payload
        writer.close()
    finally:
        await inside.close()
        await outside.close()


async def test_when_one_side_closes_the_other_is_closed(tmp_path: Path) -> None:
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    inside, outside = await _chain(tmp_path, "127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(inside))
        far = await asyncio.wait_for(accepted.get(), 10)
        far.close()  # the gateway closes: the agent sees the end
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
    finally:
        await inside.close()
        await outside.close()
        server.close()


async def test_a_slow_reader_holds_back_its_writer() -> None:
    """The relay copies no faster than the far side reads: it never holds more than a few chunks."""
    source = asyncio.StreamReader()
    total = 16 * 1024 * 1024
    source.feed_data(os.urandom(total))
    source.feed_eof()
    quiet, _unused = socket.socketpair()
    stalled, peer = socket.socketpair()  # ``peer`` never reads
    one = (source, (await asyncio.open_connection(sock=quiet))[1])
    other = await asyncio.open_connection(sock=stalled)
    task = asyncio.ensure_future(splice(one, other))
    await asyncio.sleep(0.5)
    buffered = other[1].transport.get_write_buffer_size()
    task.cancel()
    left = len(await source.read())
    assert buffered <= 4 * CHUNK
    assert total - left < 4 * 1024 * 1024, "the relay read far more than the far side took"
    peer.close()
    _unused.close()


async def test_more_connections_than_allowed_are_closed_at_once() -> None:
    gate = asyncio.Event()

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        await gate.wait()  # the first connection stays in "connecting"
        raise OSError("never")

    relay = Relay(connect, max_connections=1)
    relay.server = await asyncio.start_server(relay.handle, "127.0.0.1", 0)
    try:
        first = await asyncio.open_connection("127.0.0.1", _port(relay))
        await asyncio.sleep(0.1)
        second = await asyncio.open_connection("127.0.0.1", _port(relay))
        assert await asyncio.wait_for(second[0].read(), 10) == b""
        gate.set()
        assert await asyncio.wait_for(first[0].read(), 10) == b""  # the target failed: closed too
    finally:
        await relay.close()


async def test_an_unreachable_gateway_closes_the_agents_connection(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    inside, outside = await _chain(tmp_path, "127.0.0.1", port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(inside))
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        await inside.close()
        await outside.close()


async def test_closing_the_relay_ends_its_connections(tmp_path: Path, echo: tuple[str, int]) -> None:
    inside, outside = await _chain(tmp_path, *echo)
    port = _port(inside)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 10) == b"ping"
    await outside.close()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    await inside.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
