"""UpstreamPool: origins, reuse, the retry rule, errors (and their messages), aiohttp and TLS interop."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from gatepass.dataplane.http.client import Origin, UpstreamPool
from gatepass.errors import UpstreamConnectError, UpstreamProtocolError, UpstreamTimeoutError

from .helpers import ScriptedUpstream, keep_alive_ok, ok_response, scripted_upstream, self_signed_cert

SECRET = "sk-test-" + "9" * 24  # a credential-shaped header value that must never show in an error
CREDENTIALS = [(b"x-api-key", SECRET.encode()), (b"authorization", b"Bearer " + SECRET.encode())]


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    p = UpstreamPool(connect_timeout=2, read_timeout=2)
    yield p
    await p.close()


def assert_clean(exc: BaseException, label: str) -> None:
    message = str(exc)
    assert SECRET not in message
    assert label in message
    assert "\n" not in message


# -- Origin ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin", "host_header", "base_path"),
    [
        ("https://api.anthropic.com", Origin("https", "api.anthropic.com", 443), b"api.anthropic.com", b""),
        ("https://API.openai.com/v1/", Origin("https", "api.openai.com", 443), b"api.openai.com", b"/v1"),
        ("http://127.0.0.1:8080/x/y", Origin("http", "127.0.0.1", 8080), b"127.0.0.1:8080", b"/x/y"),
        ("http://localhost", Origin("http", "localhost", 80), b"localhost", b""),
        ("https://[::1]:8443", Origin("https", "::1", 8443), b"[::1]:8443", b""),
        ("http://h/a b", Origin("http", "h", 80), b"h", b"/a%20b"),
    ],
)
def test_origin_parse(url: str, origin: Origin, host_header: bytes, base_path: bytes) -> None:
    parsed = Origin.parse(url)
    assert parsed == origin  # the base path takes no part: one pool per scheme, host and port
    assert hash(parsed) == hash(origin)
    assert parsed.host_header == host_header
    assert parsed.base_path == base_path


@pytest.mark.parametrize(
    "url", ["ftp://x", "api.anthropic.com", "https://", "http://u:p@host", "http://h:99999", "http://h/p?q=1"]
)
def test_origin_parse_refuses(url: str) -> None:
    with pytest.raises(ValueError, match="upstream URL"):
        Origin.parse(url)


def test_origin_label() -> None:
    assert Origin.parse("https://api.anthropic.com").label == "api.anthropic.com:443"
    assert str(Origin.parse("http://[::1]:81")) == "http://[::1]:81"


# -- requests and reuse ----------------------------------------------------------------------


async def test_requests_reuse_one_connection(pool: UpstreamPool) -> None:
    async with scripted_upstream(keep_alive_ok) as up:
        origin = Origin.parse(up.url)
        for i in range(1, 6):
            response = await pool.request(origin, "POST", b"/v1/messages", CREDENTIALS, b'{"n":%d}' % i)
            assert (response.status, await response.read()) == (200, str(i).encode())
        assert up.connections == 1
        assert pool.idle_connections == 1


async def test_concurrent_requests_open_connections_and_keep_them(pool: UpstreamPool) -> None:
    async with scripted_upstream(keep_alive_ok) as up:
        origin = Origin.parse(up.url)

        async def one() -> bytes:
            response = await pool.request(origin, "GET", b"/", [])
            return await response.read()

        await asyncio.gather(*(one() for _ in range(4)))
        assert up.connections == 4
        await asyncio.gather(*(one() for _ in range(4)))
        assert up.connections == 4  # all four were reused


async def test_host_and_content_length_are_added_and_framing_headers_dropped(pool: UpstreamPool) -> None:
    async with scripted_upstream(keep_alive_ok) as up:
        origin = Origin.parse(up.url)
        headers = [
            (b"Content-Type", b"application/json"),
            (b"Content-Length", b"999"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Connection", b"close"),
            *CREDENTIALS,
        ]
        await (await pool.request(origin, "POST", b"/v1/messages?x=1", headers, b"{}")).read()
        await (await pool.request(origin, "GET", b"/models", [(b"host", b"custom.example")])).read()
        post, get = up.requests
        assert post.request_line == b"POST /v1/messages?x=1 HTTP/1.1"
        assert post.header(b"host") == f"127.0.0.1:{up.port}".encode()
        assert post.header(b"content-length") == b"2"
        assert post.header(b"transfer-encoding") is None and post.header(b"connection") is None
        assert post.header(b"x-api-key") == SECRET.encode()
        assert post.body == b"{}"
        assert get.header(b"host") == b"custom.example"
        assert get.header(b"content-length") is None


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET", b"/a b", []),
        ("GET", b"/a\r\nX: y", []),
        ("GET", b"", []),
        ("G T", b"/", []),
        ("GET", b"/", [(b"x-a", b"1\r\nx-injected: 2")]),
        ("GET", b"/", [(b"x a", b"1")]),
    ],
)
async def test_requests_that_would_break_the_message_are_refused(
    pool: UpstreamPool, method: str, target: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    with pytest.raises(ValueError, match="invalid"):
        await pool.request(Origin.parse("http://127.0.0.1:9"), method, target, headers)


async def test_lifo_reuse_and_the_idle_cap() -> None:
    async def numbered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        number = up.connections
        while (await up.next_request(reader)) is not None:
            await asyncio.sleep(0.02 * number if len(up.requests) <= 3 else 0)  # first three finish in order
            writer.write(ok_response(b"conn-%d" % number))
            await writer.drain()

    pool = UpstreamPool(max_idle_per_origin=2)
    try:
        async with scripted_upstream(numbered) as up:
            origin = Origin.parse(up.url)

            async def one() -> bytes:
                return await (await pool.request(origin, "GET", b"/", [])).read()

            assert sorted(await asyncio.gather(one(), one(), one())) == [b"conn-1", b"conn-2", b"conn-3"]
            assert pool.idle_connections == 2  # the third one back found the idle list full
            assert [await one() for _ in range(2)] == [b"conn-2", b"conn-2"]  # most recent first
    finally:
        await pool.close()


async def test_idle_connections_past_idle_timeout_are_not_reused() -> None:
    pool = UpstreamPool(idle_timeout=0.05)
    try:
        async with scripted_upstream(keep_alive_ok) as up:
            origin = Origin.parse(up.url)
            await (await pool.request(origin, "GET", b"/", [])).read()
            await asyncio.sleep(0.1)
            await (await pool.request(origin, "GET", b"/", [])).read()
            assert up.connections == 2
    finally:
        await pool.close()


async def test_a_connection_closed_by_the_upstream_while_idle_is_discarded(pool: UpstreamPool) -> None:
    async def answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream
    ) -> None:
        if await up.next_request(reader) is not None:
            writer.write(ok_response())  # keep-alive allowed, yet the upstream then closes
            await writer.drain()

    async with scripted_upstream(answer_then_close) as up:
        origin = Origin.parse(up.url)
        await (await pool.request(origin, "POST", b"/", [], b"1")).read()
        for _ in range(200):
            if pool.idle_connections == 0:
                break
            await asyncio.sleep(0.005)
        assert pool.idle_connections == 0
        response = await pool.request(origin, "POST", b"/", [], b"2")  # a POST: fine, on a fresh connection
        assert await response.read() == b"ok"
        assert up.connections == 2


async def test_connection_close_response_is_not_reused(pool: UpstreamPool) -> None:
    async def close_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        if await up.next_request(reader) is not None:
            writer.write(ok_response(extra=b"connection: close\r\n"))
            await writer.drain()
            await reader.read()

    async with scripted_upstream(close_each) as up:
        origin = Origin.parse(up.url)
        for _ in range(2):
            await (await pool.request(origin, "GET", b"/", [])).read()
        assert up.connections == 2


# -- the retry rule --------------------------------------------------------------------------


async def _answer_first_drop_second(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream
) -> None:
    """Answer the first request of a connection, reset it at the second: a server whose keep-alive
    timeout fires just as the request is sent."""
    if await up.next_request(reader) is None:
        return
    writer.write(ok_response(b"first"))
    await writer.drain()
    if await up.next_request(reader) is None:
        return
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
    writer.transport.abort()


async def test_an_idempotent_request_on_a_stale_connection_is_retried_once(pool: UpstreamPool) -> None:
    async with scripted_upstream(_answer_first_drop_second) as up:
        origin = Origin.parse(up.url)
        await (await pool.request(origin, "GET", b"/a", [])).read()
        response = await pool.request(origin, "GET", b"/b", [])
        assert await response.read() == b"first"  # answered on a fresh connection
        assert up.connections == 2
        assert [r.request_line for r in up.requests] == [b"GET /a HTTP/1.1", b"GET /b HTTP/1.1", b"GET /b HTTP/1.1"]


async def test_a_post_on_a_stale_connection_is_never_sent_twice(pool: UpstreamPool) -> None:
    async with scripted_upstream(_answer_first_drop_second) as up:
        origin = Origin.parse(up.url)
        await (await pool.request(origin, "POST", b"/v1/messages", CREDENTIALS, b"{}")).read()
        with pytest.raises(UpstreamProtocolError, match="not sent again") as info:
            await pool.request(origin, "POST", b"/v1/messages", CREDENTIALS, b"{}")
        assert_clean(info.value, f"127.0.0.1:{up.port}")
        assert len(up.requests) == 2
        assert up.connections == 1


async def test_a_fresh_connection_that_closes_at_once_is_not_retried(pool: UpstreamPool) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)

    async with scripted_upstream(hang_up) as up:
        with pytest.raises(UpstreamProtocolError, match="before sending a response") as info:
            await pool.request(Origin.parse(up.url), "GET", b"/", CREDENTIALS)
        assert_clean(info.value, f"127.0.0.1:{up.port}")
        assert up.connections == 1


# -- errors ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_refused_port_is_a_connect_error(pool: UpstreamPool) -> None:
    port = free_port()
    with pytest.raises(UpstreamConnectError, match="cannot connect") as info:
        await pool.request(Origin.parse(f"http://127.0.0.1:{port}"), "POST", b"/", CREDENTIALS, b"{}")
    assert_clean(info.value, f"127.0.0.1:{port}")


async def test_unresolvable_host_is_a_connect_error(pool: UpstreamPool) -> None:
    with pytest.raises(UpstreamConnectError, match="resolve") as info:
        await pool.request(Origin.parse("http://gatepass-test.invalid"), "GET", b"/", CREDENTIALS)
    assert_clean(info.value, "gatepass-test.invalid")


async def test_connect_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: once its backlog is full, new connections hang
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    pool = UpstreamPool(connect_timeout=0.3)
    try:
        with pytest.raises(UpstreamTimeoutError, match=r"took longer than 0\.3 s") as info:
            await pool.request(Origin.parse(f"http://127.0.0.1:{port}"), "GET", b"/", CREDENTIALS)
        assert_clean(info.value, f"127.0.0.1:{port}")
    finally:
        await pool.close()
        for s in [listener, *fillers]:
            s.close()


async def test_an_upstream_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        await reader.read()

    pool = UpstreamPool(read_timeout=0.2)
    try:
        async with scripted_upstream(silent) as up:
            with pytest.raises(UpstreamTimeoutError, match=r"did not send a response within 0\.2 s") as info:
                await pool.request(Origin.parse(up.url), "POST", b"/", CREDENTIALS, b"{}")
            assert_clean(info.value, f"127.0.0.1:{up.port}")
    finally:
        await pool.close()


async def test_garbage_is_a_protocol_error(pool: UpstreamPool) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with scripted_upstream(garbage) as up:
        with pytest.raises(UpstreamProtocolError, match=r"not a valid HTTP/1\.1 response") as info:
            await pool.request(Origin.parse(up.url), "GET", b"/", CREDENTIALS)
        assert_clean(info.value, f"127.0.0.1:{up.port}")


async def test_closing_the_pool_fails_exchanges_in_progress() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
        await up.next_request(reader)
        await reader.read()

    pool = UpstreamPool()
    async with scripted_upstream(silent) as up:
        pending = asyncio.create_task(pool.request(Origin.parse(up.url), "GET", b"/", []))
        for _ in range(200):
            if up.requests:
                break
            await asyncio.sleep(0.005)
        await pool.close()
        with pytest.raises(UpstreamProtocolError, match="the gateway is stopping"):
            await asyncio.wait_for(pending, 2)


async def test_a_closed_pool_refuses_requests() -> None:
    pool = UpstreamPool()
    await pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        await pool.request(Origin.parse("http://127.0.0.1:9"), "GET", b"/", [])


# -- interop ---------------------------------------------------------------------------------


@pytest.fixture
async def aiohttp_upstream() -> AsyncIterator[str]:
    async def json_echo(request: web.Request) -> web.Response:
        return web.json_response(
            {"method": request.method, "body": (await request.read()).decode(), "key": request.headers.get("x-api-key")}
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for i in range(3):
            await response.write(b"data: %d\n\n" % i)
        await response.write_eof()
        return response

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def gzipped(request: web.Request) -> web.Response:
        response = web.Response(body=b"x" * 2000)
        response.enable_compression(web.ContentCoding.gzip)
        return response

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/echo", json_echo)
    app.router.add_get("/stream", stream)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/empty", empty)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_interop_with_aiohttp_web(pool: UpstreamPool, aiohttp_upstream: str) -> None:
    origin = Origin.parse(aiohttp_upstream)
    response = await pool.request(origin, "POST", b"/echo", [(b"x-api-key", b"k")], b"hello")
    assert response.status == 200
    assert response.header(b"content-type") == b"application/json; charset=utf-8"
    assert await response.read() == b'{"method": "POST", "body": "hello", "key": "k"}'

    response = await pool.request(origin, "GET", b"/stream", [])
    assert response.header(b"transfer-encoding") == b"chunked"
    assert b"".join([piece async for piece in response]) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"

    response = await pool.request(origin, "GET", b"/redirect", [])
    assert (response.status, response.header(b"location")) == (302, b"/elsewhere")  # not followed
    await response.read()

    response = await pool.request(origin, "GET", b"/gzip", [(b"accept-encoding", b"gzip")])
    body = await response.read()
    assert response.header(b"content-encoding") == b"gzip"
    assert body[:2] == b"\x1f\x8b" and len(body) < 2000  # passed as received, not decompressed

    response = await pool.request(origin, "GET", b"/empty", [])
    assert (response.status, await response.read()) == (204, b"")

    response = await pool.request(origin, "HEAD", b"/echo", [])
    assert response.status == 200 and response.header(b"content-length") is not None
    assert await response.read() == b""
    response = await pool.request(origin, "GET", b"/echo", [])  # the connection is still in step
    assert b'"method": "GET"' in await response.read()
    assert pool.idle_connections == 1


async def test_https_with_sni_and_certificate_checks(tmp_path: Path) -> None:
    cert_pem, key_pem = self_signed_cert()
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    shared = ScriptedUpstream(keep_alive_ok)
    server = await asyncio.start_server(lambda r, w: keep_alive_ok(r, w, shared), "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    origin = Origin.parse(f"https://127.0.0.1:{port}")
    try:
        untrusting = UpstreamPool(connect_timeout=2)
        try:
            with pytest.raises(UpstreamConnectError, match="TLS") as info:
                await untrusting.request(origin, "GET", b"/", CREDENTIALS)
            assert_clean(info.value, f"127.0.0.1:{port}")
        finally:
            await untrusting.close()
        client_ctx = ssl.create_default_context(cadata=cert_pem.decode())
        trusting = UpstreamPool(ssl_context=client_ctx)
        try:
            bodies = [await (await trusting.request(origin, "GET", b"/", [])).read() for _ in range(2)]
            assert bodies == [b"1", b"2"]  # both on one kept-alive TLS connection
            assert trusting.idle_connections == 1
        finally:
            await trusting.close()
    finally:
        server.close()
