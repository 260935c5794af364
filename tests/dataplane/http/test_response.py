"""UpstreamResponse: driven by a fake body source, then over sockets (limits, closing, cancelling)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gatepass.dataplane.http.client import Origin, UpstreamPool
from gatepass.dataplane.http.response import UpstreamResponse
from gatepass.errors import UpstreamProtocolError, UpstreamTimeoutError

from .helpers import ScriptedUpstream, keep_alive_ok, ok_response, scripted_upstream

SECRET = "sk-test-" + "3" * 24


class FakeSource:
    label = "api.example.com:443"

    def __init__(self) -> None:
        self.drains = 0
        self.abandoned = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def drained(self) -> None:
        self.drains += 1

    def abandon(self) -> None:
        self.abandoned = True


def response() -> tuple[UpstreamResponse, FakeSource]:
    source = FakeSource()
    return UpstreamResponse(
        source, 200, "OK", [(b"content-type", b"text/plain"), (b"x-a", b"1"), (b"x-a", b"2")]
    ), source


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    p = UpstreamPool(read_timeout=2)
    yield p
    await p.close()


def test_head_fields() -> None:
    r, _ = response()
    assert (r.status, r.reason) == (200, "OK")
    assert r.header(b"x-a") == b"1" and r.header(b"nope") is None


async def test_pieces_buffered_before_a_read_come_out_joined() -> None:
    r, source = response()
    r._feed(b"ab")
    r._feed(b"cd")
    assert await r.__anext__() == b"abcd"
    assert source.drains == 1
    r._feed(b"e")
    r._finish()
    assert [piece async for piece in r] == [b"e"]


async def test_a_waiting_reader_wakes_on_each_piece() -> None:
    r, _ = response()
    got: list[bytes] = []

    async def consume() -> None:
        async for piece in r:
            got.append(piece)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    r._feed(b"one")
    await asyncio.sleep(0)
    assert got == [b"one"]
    r._feed(b"two")
    r._finish()
    await asyncio.wait_for(task, 1)
    assert got == [b"one", b"two"]


async def test_read_returns_the_whole_body_and_checks_the_limit() -> None:
    r, _ = response()
    r._feed(b"x" * 10)
    r._finish()
    assert await r.read(limit=10) == b"x" * 10
    r2, _ = response()
    r2._feed(b"x" * 11)
    r2._finish()
    with pytest.raises(UpstreamProtocolError, match="larger than 10 bytes") as info:
        await r2.read(limit=10)
    assert "api.example.com:443" in str(info.value)


async def test_an_error_comes_after_the_pieces_that_arrived() -> None:
    r, _ = response()
    r._feed(b"partial")
    r._fail(UpstreamTimeoutError("too slow"))
    assert await r.__anext__() == b"partial"
    with pytest.raises(UpstreamTimeoutError):
        await r.__anext__()


async def test_aclose_abandons_an_unfinished_body() -> None:
    r, source = response()
    r._feed(b"x")
    await r.aclose()
    assert source.abandoned
    with pytest.raises(UpstreamProtocolError, match="closed before its whole body was read"):
        await r.read()
    finished, source2 = response()
    finished._finish()
    await finished.aclose()
    assert not source2.abandoned
    assert await finished.read() == b""


async def test_read_limit(pool: UpstreamPool) -> None:
    async with scripted_upstream(keep_alive_ok) as up:
        origin = Origin.parse(up.url)
        response = await pool.request(origin, "GET", b"/", [])
        with pytest.raises(UpstreamProtocolError, match="larger than 0 bytes"):
            await response.read(limit=0)
        response = await pool.request(origin, "GET", b"/", [])
        assert await response.read(limit=1) == b"2"


async def test_closing_an_unread_response_closes_its_connection(pool: UpstreamPool) -> None:
    release = asyncio.Event()

    async def slow_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        while (await up.next_request(reader)) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab")
            await writer.drain()
            await release.wait()
            writer.write(b"cd")
            await writer.drain()

    async with scripted_upstream(slow_body) as up:
        origin = Origin.parse(up.url)
        async with await pool.request(origin, "GET", b"/", []) as response:
            assert await response.__anext__() == b"ab"
        release.set()
        assert pool.idle_connections == 0
        response = await pool.request(origin, "GET", b"/", [])
        assert await response.read() == b"abcd"
        assert up.connections == 2


async def test_cancelling_a_read_closes_the_connection(pool: UpstreamPool) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()  # returns when the client closes

    async with scripted_upstream(stall) as up:
        response = await pool.request(Origin.parse(up.url), "GET", b"/", [])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(response.read(), 0.1)
        with pytest.raises(UpstreamProtocolError, match="closed before its whole body was read"):
            await response.read()
        assert pool.idle_connections == 0


async def test_response_repr_shows_no_headers(pool: UpstreamPool) -> None:
    async def with_cookie(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        writer.write(ok_response(extra=b"set-cookie: session=" + SECRET.encode() + b"\r\n"))
        await writer.drain()

    async with scripted_upstream(with_cookie) as up:
        response = await pool.request(Origin.parse(up.url), "GET", b"/", [])
        assert SECRET not in repr(response)
        assert "200" in repr(response)
        await response.aclose()
