"""ResponseWriter: framing driven through a fake sink, then backpressure and disconnects over sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gatepass.dataplane.http import ClientDisconnected, IncomingRequest, ResponseWriter

from .helpers import WAIT, RawClient, request_bytes, serving


class FakeSink:
    """Collects what a writer emits."""

    def __init__(self, *, keep_alive_allowed: bool = True) -> None:
        self.data = bytearray()
        self.done: list[bool] = []
        self.lost = False
        self.writing_paused = False
        self._keep = keep_alive_allowed

    def emit(self, data: bytes | bytearray) -> None:
        self.data += data

    async def drain(self) -> None:
        return None

    async def wait_lost(self) -> None:
        return None

    def keep_alive_allowed(self) -> bool:
        return self._keep

    def response_done(self, keep_alive: bool) -> None:
        self.done.append(keep_alive)


def writer(
    *, head: bool = False, http10: bool = False, keep_alive: bool = True, **sink: bool
) -> tuple[ResponseWriter, FakeSink]:
    fake = FakeSink(**sink)
    return ResponseWriter(fake, head, http10, keep_alive), fake


def test_send_frames_with_content_length_and_replaces_framing_headers() -> None:
    w, sink = writer()
    w.send(
        201,
        [(b"Content-Type", b"application/json"), (b"Content-Length", b"999"), (b"Connection", b"upgrade")],
        b'{"a":1}',
    )
    assert bytes(sink.data) == (
        b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\ncontent-length: 7\r\n\r\n{"a":1}'
    )
    assert sink.done == [True]
    assert w.started and w.finished and w.status == 201


def test_send_says_close_when_the_connection_will_close() -> None:
    w, sink = writer(keep_alive=False)
    w.send(200, [], b"x")
    assert b"connection: close\r\n" in sink.data
    assert sink.done == [False]
    w2, sink2 = writer(keep_alive_allowed=False)
    w2.send(200)
    assert b"connection: close\r\n" in sink2.data and sink2.done == [False]


def test_http_1_0_keep_alive_is_stated() -> None:
    w, sink = writer(http10=True)
    w.send(200, [], b"x")
    assert b"connection: keep-alive\r\n" in sink.data


def test_large_bodies_are_not_copied_behind_the_head() -> None:
    w, sink = writer()
    body = b"z" * 200_000
    w.send(200, [], body)
    assert sink.data.endswith(b"\r\n\r\n" + body)


def test_head_request_gets_no_body_but_the_length() -> None:
    w, sink = writer(head=True)
    w.send(200, [(b"content-type", b"text/plain")], b"hello")
    assert sink.data.endswith(b"content-length: 5\r\n\r\n")
    w2, sink2 = writer(head=True)
    w2.send(200, [(b"content-length", b"42")])
    assert sink2.data.endswith(b"content-length: 42\r\n\r\n")


@pytest.mark.parametrize("status", [204, 304, 103])
def test_statuses_without_body(status: int) -> None:
    w, sink = writer()
    w.send(status, [(b"content-length", b"3")], b"abc")
    assert b"content-length" not in sink.data
    assert sink.data.endswith(b"\r\n\r\n")


async def test_stream_is_chunked_without_content_length() -> None:
    w, sink = writer()
    w.start(200, [(b"content-type", b"text/event-stream"), (b"transfer-encoding", b"gzip")])
    await w.write(b"data: 1\n\n")
    await w.write(b"")  # an empty write is not the terminating chunk
    await w.end(b"data: 2\n\n")
    assert bytes(sink.data) == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"
    )
    assert sink.done == [True]
    await w.end()  # a second end does nothing
    assert sink.done == [True]


async def test_stream_with_content_length() -> None:
    w, sink = writer()
    w.start(200, [(b"content-length", b"6")])
    await w.write(b"abc")
    with pytest.raises(ValueError, match="longer than its content-length"):
        await w.write(b"defg")
    await w.write(b"def")
    await w.end()
    assert sink.data.endswith(b"content-length: 6\r\n\r\nabcdef")
    assert sink.done == [True]


async def test_a_stream_shorter_than_announced_closes_the_connection() -> None:
    w, sink = writer()
    w.start(200, [(b"content-length", b"10")])
    await w.write(b"abc")
    await w.end()
    assert sink.done == [False]


async def test_stream_to_http_1_0_is_delimited_by_close() -> None:
    w, sink = writer(http10=True)
    w.start(200, [])
    await w.write(b"abc")
    await w.end()
    assert b"transfer-encoding" not in sink.data and b"connection: close" in sink.data
    assert sink.data.endswith(b"\r\n\r\nabc")
    assert sink.done == [False]


async def test_stream_to_head_request_writes_no_body() -> None:
    w, sink = writer(head=True)
    w.start(200, [(b"content-type", b"text/plain")])
    await w.write(b"ignored")
    await w.end()
    assert sink.data.endswith(b"\r\n\r\n")
    assert b"ignored" not in sink.data


async def test_misuse_raises() -> None:
    w, _ = writer()
    with pytest.raises(RuntimeError):
        await w.write(b"x")
    with pytest.raises(RuntimeError):
        await w.end()
    w.send(200)
    with pytest.raises(RuntimeError):
        w.send(200)
    with pytest.raises(RuntimeError):
        w.start(200)
    w2, _ = writer()
    with pytest.raises(ValueError, match="content-length"):
        w2.start(200, [(b"content-length", b"ten")])


@pytest.mark.parametrize(
    "header",
    [
        (b"x-evil", b"a\r\nset-cookie: b"),
        (b"x-evil", b"a\nb"),
        (b"x-evil", b"a\rb"),
        (b"x-evil", b"a\0b"),
        (b"x evil", b"a"),
        (b"x-evil:", b"a"),
        (b"", b"a"),
    ],
)
def test_header_injection_is_refused(header: tuple[bytes, bytes]) -> None:
    w, sink = writer()
    with pytest.raises(ValueError, match="invalid"):
        w.send(200, [header])
    assert not sink.data


async def test_abort_closes_without_finishing() -> None:
    w, sink = writer()
    w.start(200)
    await w.write(b"part")
    w.abort()
    assert not sink.data.endswith(b"0\r\n\r\n")
    assert sink.done == [False] and w.finished
    w.abort()  # once is enough
    assert sink.done == [False]
    w2, sink2 = writer()
    w2.abort()  # before anything was sent: no response at all
    assert (bytes(sink2.data), sink2.done) == (b"", [False])


async def test_after_a_disconnect_writes_raise_client_disconnected() -> None:
    w, sink = writer()
    w.start(200)
    sink.lost = True
    assert w.disconnected
    with pytest.raises(ClientDisconnected):
        await w.write(b"x")
    with pytest.raises(ClientDisconnected):
        await w.end()
    w2, sink2 = writer()
    sink2.lost = True
    with pytest.raises(ClientDisconnected):
        w2.send(200)


# -- over sockets ----------------------------------------------------------------------------


async def test_write_waits_while_the_client_does_not_read() -> None:
    written = 0
    done = asyncio.Event()
    chunk = b"x" * 65536

    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        nonlocal written
        writer.start(200, [(b"content-type", b"application/octet-stream")])
        for _ in range(400):  # 25 MiB if nothing pushed back
            await writer.write(chunk)
            written += 1
        await writer.end()
        done.set()

    async with serving(handler) as server:
        client = await RawClient.connect(server.port, limit=2**20)
        sock = client.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        await client.send(request_bytes())
        await asyncio.sleep(0.3)  # the client reads nothing meanwhile
        stalled_at = written
        assert stalled_at < 100, "the handler was not held back by a client that does not read"
        await asyncio.sleep(0.1)
        assert written == stalled_at  # still waiting, not buffering
        response = await client.response()  # now read everything
        assert len(response.body) == 400 * len(chunk)
        await asyncio.wait_for(done.wait(), WAIT)
        await client.close()


async def test_the_handler_learns_that_the_client_went_away_mid_stream() -> None:
    streaming = asyncio.Event()
    outcome: list[str] = []

    async def handler(request: IncomingRequest, writer: ResponseWriter) -> None:
        writer.start(200, [(b"content-type", b"text/event-stream")])
        await writer.write(b"data: first\n\n")
        streaming.set()
        await asyncio.wait_for(writer.wait_disconnected(), WAIT)
        outcome.append(f"disconnected={writer.disconnected}")
        try:
            await writer.write(b"data: late\n\n")
        except ClientDisconnected:
            outcome.append("write raised ClientDisconnected")
            raise

    async with serving(handler) as server:
        client = await RawClient.connect(server.port)
        await client.send(request_bytes())
        await asyncio.wait_for(streaming.wait(), WAIT)
        await client.close()
        for _ in range(100):
            if len(outcome) == 2:
                break
            await asyncio.sleep(0.01)
        assert outcome == ["disconnected=True", "write raised ClientDisconnected"]
        for _ in range(100):
            if server.in_flight == 0:
                break
            await asyncio.sleep(0.01)
        assert server.in_flight == 0
