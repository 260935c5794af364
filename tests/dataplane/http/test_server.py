"""start_server and HttpServer: a real client (httpx), handler failures, graceful close, the loop."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest

from gatepass.dataplane.http import IncomingRequest, ResponseWriter, new_event_loop, start_server

from .helpers import WAIT, RawClient, echo, request_bytes, serving


async def test_tests_run_on_the_gateway_loop() -> None:
    loop = asyncio.get_running_loop()
    assert type(loop).__module__.startswith("uvloop")
    other = new_event_loop()
    try:
        assert type(other) is type(loop)
    finally:
        other.close()


async def test_httpx_against_the_server() -> None:
    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        if request.path == "/stream":
            writer.start(200, [(b"content-type", b"text/event-stream")])
            for i in range(3):
                await writer.write(b"data: %d\n\n" % i)
            await writer.end()
        else:
            payload = {
                "method": request.method,
                "path": request.path,
                "query": request.query.decode(),
                "body": request.body.decode(),
                "key": (request.header(b"x-api-key") or b"").decode(),
            }
            writer.send(200, [(b"content-type", b"application/json")], json.dumps(payload).encode())

    async def chunks() -> AsyncIterator[bytes]:
        for piece in (b"chunk", b"ed ", b"body"):
            yield piece

    async with serving(handler) as server:
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=WAIT) as client:
            response = await client.post("/anthropic/v1/messages?beta=1", json={"a": 1}, headers={"x-api-key": "k"})
            assert response.status_code == 200
            assert response.json() == {
                "method": "POST",
                "path": "/anthropic/v1/messages",
                "query": "beta=1",
                "body": '{"a":1}',
                "key": "k",
            }
            response = await client.post("/upload", content=chunks())  # sent chunked
            assert response.json()["body"] == "chunked body"
            async with client.stream("GET", "/stream") as streamed:
                assert streamed.headers["transfer-encoding"] == "chunked"
                assert [line async for line in streamed.aiter_lines() if line] == ["data: 0", "data: 1", "data: 2"]
            response = await client.head("/h")
            assert response.status_code == 200 and response.content == b""
        assert server.connections <= 1  # httpx kept one connection alive for all of it


async def test_a_handler_that_raises_gets_500_and_the_server_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        if request.path == "/boom":
            raise KeyError("secret-ish detail")
        writer.send(200, [], b"fine")

    async with serving(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes("GET", "/boom"))
        response = await client.response()
        assert response.status == 500
        assert response.header("connection") == "close"
        assert json.loads(response.body)["error"]["type"] == "internal_error"
        assert b"secret-ish" not in response.body
        assert await client.closed_by_peer()
        other = await RawClient.connect(server.port)
        await other.send(request_bytes("GET", "/ok"))
        assert (await other.response()).body == b"fine"
        await other.close()
    assert any("handler failed on GET /boom" in r.getMessage() for r in caplog.records)


async def test_a_handler_that_raises_mid_stream_cuts_the_connection() -> None:
    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        writer.start(200, [])
        await writer.write(b"partial")
        raise RuntimeError("upstream broke")

    async with serving(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes())
        head = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 200")
        rest = await asyncio.wait_for(client.reader.read(), WAIT)
        assert rest.startswith(b"7\r\npartial\r\n")
        assert not rest.endswith(b"0\r\n\r\n")  # no terminating chunk: the client sees the cut


async def test_a_handler_that_does_not_respond_gets_500() -> None:
    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        return None

    async with serving(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes())
        assert (await client.response()).status == 500
        await client.close()


async def test_a_stream_the_handler_did_not_end_is_ended_for_it() -> None:
    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        writer.start(200, [])
        await writer.write(b"abc")

    async with serving(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes() * 2)
        assert (await client.response()).body == b"abc"
        assert (await client.response()).body == b"abc"
        await client.close()


async def test_graceful_close_waits_for_in_flight_handlers() -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        if request.path == "/slow":
            entered.set()
            await release.wait()
        writer.send(200, [], request.path.encode())

    server = await start_server(handler, "127.0.0.1", 0)
    port = server.port
    idle = await RawClient.connect(port)
    await idle.send(request_bytes("GET", "/quick"))
    assert (await idle.response()).status == 200
    busy = await RawClient.connect(port)
    await busy.send(request_bytes("GET", "/slow"))
    await asyncio.wait_for(entered.wait(), WAIT)
    assert server.in_flight == 1

    closing = asyncio.create_task(server.close(grace=WAIT))
    assert await idle.closed_by_peer()  # idle keep-alive connections go at once
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer accepting
    assert not closing.done()
    release.set()
    response = await busy.response()
    assert (response.status, response.body) == (200, b"/slow")
    assert response.header("connection") == "close"
    await asyncio.wait_for(closing, WAIT)
    assert server.in_flight == 0


async def test_graceful_close_gives_up_after_the_grace_period() -> None:
    cancelled = asyncio.Event()

    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = await start_server(handler, "127.0.0.1", 0)
    client = await RawClient.connect(server.port)
    await client.send(request_bytes())
    for _ in range(100):
        if server.in_flight:
            break
        await asyncio.sleep(0.01)
    await asyncio.wait_for(server.close(grace=0.1), WAIT)
    assert cancelled.is_set()
    assert await client.closed_by_peer()


async def test_serving_an_already_bound_socket() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await start_server(echo, sock=sock)
    try:
        assert server.port == port
        assert server.sockets[0].getsockname()[1] == port
        client = await RawClient.connect(port)
        await client.send(request_bytes("GET", "/bound"))
        assert (await client.response()).header("x-path") == "/bound"
        await client.close()
    finally:
        await server.close(grace=1)


async def test_reuse_port_lets_two_servers_share_a_port() -> None:
    first = await start_server(echo, "127.0.0.1", 0, reuse_port=True)
    try:
        second = await start_server(echo, "127.0.0.1", first.port, reuse_port=True)
        await second.close(grace=1)
    finally:
        await first.close(grace=1)


async def test_async_context_manager_closes() -> None:
    async with await start_server(echo, "127.0.0.1", 0) as server:
        port = server.port
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
