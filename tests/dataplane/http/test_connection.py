"""The server's connections over real sockets: keep-alive, order, limits, timeouts, 100-continue, HEAD."""

from __future__ import annotations

import asyncio
import json

from gatepass.dataplane.http import IncomingRequest, ResponseWriter, ServerLimits

from .helpers import WAIT, RawClient, echo, request_bytes, serving


async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    seen: list[tuple[str, int]] = []

    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        seen.append((request.client_ip, request.client_port))
        writer.send(200, [], b"n=%d" % len(seen))

    async with serving(handler) as server:
        client = await RawClient.connect(server.port)
        for i in range(1, 6):
            await client.send(request_bytes("POST", "/x", b"body"))
            response = await client.response()
            assert (response.status, response.body) == (200, b"n=%d" % i)
            assert response.header("connection") is None
        assert set(seen) == {("127.0.0.1", client.local_port)}
        assert server.connections == 1
        await client.close()


async def test_pipelined_requests_are_answered_in_order() -> None:
    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        # The first request takes longest: a server that answered as handlers finish would reorder.
        await asyncio.sleep({"/1": 0.05, "/2": 0.02, "/3": 0.0}[request.path])
        writer.send(200, [], request.path.encode())

    async with serving(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes("GET", "/1") + request_bytes("POST", "/2", b"x") + request_bytes("GET", "/3"))
        assert [(await client.response()).body for _ in range(3)] == [b"/1", b"/2", b"/3"]
        await client.close()


async def test_chunked_request_body_over_a_socket() -> None:
    async with serving(echo) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n")
        await client.send(b"3\r\nefg\r\n0\r\n\r\n")
        response = await client.response()
        assert (response.status, response.body) == (200, b"abcdefg")
        await client.close()


async def test_head_gets_headers_and_no_body() -> None:
    async with serving(echo) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes("HEAD", "/h") + request_bytes("GET", "/after"))
        head = await client.response(head_request=True)
        assert head.status == 200 and head.header("x-method") == "HEAD"
        after = await client.response()  # would be garbled if the HEAD answer had carried a body
        assert after.header("x-path") == "/after"
        await client.close()


async def test_http_1_0_closes_unless_keep_alive_is_asked() -> None:
    async with serving(echo) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = await client.response()
        assert response.header("connection") == "keep-alive"
        await client.send(b"GET /b HTTP/1.0\r\n\r\n")
        response = await client.response()
        assert response.header("connection") == "close"
        assert await client.closed_by_peer()


async def test_connection_close_is_honoured() -> None:
    async with serving(echo) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes("GET", "/", headers="Connection: close\r\n"))
        assert (await client.response()).header("connection") == "close"
        assert await client.closed_by_peer()


async def test_100_continue_is_sent_before_the_body_is_read() -> None:
    async with serving(echo) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        interim = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), WAIT)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        await client.send(b"hello")
        response = await client.response()
        assert (response.status, response.body) == (200, b"hello")
        await client.close()


async def test_100_continue_behind_a_running_request_waits_for_its_response() -> None:
    release = asyncio.Event()

    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        if request.path == "/slow":
            await release.wait()
        writer.send(200, [], request.path.encode() + b":" + request.body)

    async with serving(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(
            request_bytes("GET", "/slow")
            + b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        )
        early = asyncio.create_task(client.reader.read(1))
        await asyncio.sleep(0.05)
        assert not early.done()  # no 100 Continue may come before the answer owed to /slow
        early.cancel()
        release.set()
        assert (await client.response()).body == b"/slow:"
        interim = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), WAIT)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        await client.send(b"ok")
        assert (await client.response()).body == b"/up:ok"
        await client.close()


async def test_100_continue_over_the_limit_gets_413_at_once() -> None:
    async with serving(echo, limits=ServerLimits(max_body_bytes=4)) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"POST /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        response = await client.response()
        assert response.status == 413
        assert await client.closed_by_peer()


async def test_413_is_answered_before_the_body_is_sent() -> None:
    async with serving(echo, limits=ServerLimits(max_body_bytes=1024)) as server:
        client = await RawClient.connect(server.port)
        # A huge announced body that never comes: the answer must not wait for it.
        await client.send(b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000000\r\n\r\n")
        response = await client.response()
        assert response.status == 413
        assert response.header("connection") == "close"
        assert json.loads(response.body)["error"]["type"] == "body_too_large"
        assert await client.closed_by_peer()


async def test_413_reaches_a_client_that_keeps_sending_its_body() -> None:
    async with serving(echo, limits=ServerLimits(max_body_bytes=1024)) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n")
        client.writer.write(b"x" * 200000)  # the server drains it while lingering
        response = await client.response()
        assert response.status == 413
        await client.close()


async def test_431_for_a_head_too_large() -> None:
    async with serving(echo, limits=ServerLimits(max_header_bytes=2048)) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 4096 + b"\r\n\r\n")
        response = await client.response()
        assert response.status == 431
        assert await client.closed_by_peer()


async def test_smuggling_shape_gets_400_and_close() -> None:
    async with serving(echo) as server:
        client = await RawClient.connect(server.port)
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        response = await client.response()
        assert response.status == 400
        assert json.loads(response.body)["error"]["type"] == "bad_request"
        assert await client.closed_by_peer()


async def test_slowloris_head_gets_408() -> None:
    async with serving(echo, limits=ServerLimits(header_timeout=0.2)) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        for _ in range(3):  # trickling header lines does not extend the deadline
            await asyncio.sleep(0.05)
            await client.send(b"X-Drip: 1\r\n")
        response = await client.response()
        assert response.status == 408
        assert await client.closed_by_peer()


async def test_a_connection_that_sends_nothing_is_closed_without_an_answer() -> None:
    async with serving(echo, limits=ServerLimits(header_timeout=0.1)) as server:
        client = await RawClient.connect(server.port)
        assert await client.closed_by_peer()


async def test_a_stalled_body_gets_408() -> None:
    async with serving(echo, limits=ServerLimits(body_timeout=0.2)) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345")
        response = await client.response()
        assert response.status == 408
        assert json.loads(response.body)["error"]["type"] == "request_timeout"


async def test_a_slow_but_moving_body_is_not_cut() -> None:
    async with serving(echo, limits=ServerLimits(body_timeout=0.3)) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
        for byte in b"abcde":  # 0.5 s in all, each piece within the timeout
            await asyncio.sleep(0.1)
            await client.send(bytes([byte]))
        assert (await client.response()).body == b"abcde"
        await client.close()


async def test_idle_keep_alive_connection_is_closed() -> None:
    async with serving(echo, limits=ServerLimits(keepalive_timeout=0.2)) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes())
        assert (await client.response()).status == 200
        assert await client.closed_by_peer()


async def test_max_requests_per_connection() -> None:
    async with serving(echo, limits=ServerLimits(max_requests_per_connection=2)) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes() * 3)
        assert (await client.response()).header("connection") is None
        assert (await client.response()).header("connection") == "close"
        assert await client.closed_by_peer()


async def test_connect_gets_405() -> None:
    async with serving(echo) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n")
        response = await client.response()
        assert response.status == 405
        assert json.loads(response.body)["error"]["type"] == "method_not_allowed"
        assert await client.closed_by_peer()


async def test_an_upgrade_request_is_answered_as_plain_http() -> None:
    async with serving(echo) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes("GET", "/ws", headers="Connection: Upgrade\r\nUpgrade: websocket\r\n"))
        response = await client.response()
        assert (response.status, response.header("x-path")) == (200, "/ws")
        await client.send(request_bytes("GET", "/again"))
        assert (await client.response()).header("x-path") == "/again"
        await client.close()


async def test_error_body_callback_shapes_server_errors() -> None:
    calls: list[tuple[str, int, str]] = []

    def error_body(path: str, status: int, code: str, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
        calls.append((path, status, code))
        return [(b"content-type", b"application/json"), (b"x-gatepass-denied", code.encode())], b'{"shaped":1}'

    async with serving(echo, limits=ServerLimits(max_body_bytes=1), error_body=error_body) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes("POST", "/openai/v1/chat", b"too big"))
        response = await client.response()
        assert (response.status, response.body) == (413, b'{"shaped":1}')
        assert response.header("x-gatepass-denied") == "body_too_large"
        assert calls == [("/openai/v1/chat", 413, "body_too_large")]


async def test_a_failing_error_body_callback_falls_back_to_the_default() -> None:
    def error_body(path: str, status: int, code: str, message: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
        raise RuntimeError("broken shaper")

    async with serving(echo, error_body=error_body) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"NOT HTTP AT ALL\r\n\r\n")
        response = await client.response()
        assert response.status == 400
        assert json.loads(response.body)["error"]["type"] == "bad_request"
