"""The benchmark upstream: fixed Anthropic-shaped answers, keep-alive, pipelining."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anthropic
import pytest

from gatepass.providers import Usage, get_provider
from gatepass.testing.fast_upstream import MESSAGE, STREAM, serve

POST = b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"


@pytest.fixture
async def fast() -> AsyncIterator[str]:
    server = await serve("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_sdk_gets_the_fixed_message_and_stream(fast: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=f"http://{fast}", api_key="any", max_retries=0)
    message = await client.messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 5)
    async with client.messages.stream(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]) as stream:
        assert "".join([text async for text in stream.text_stream]) == "hi"
        assert (await stream.get_final_message()).usage.output_tokens == 5


def test_the_fixed_answers_meter_as_documented() -> None:
    provider = get_provider("anthropic")
    route = provider.route("POST", "/v1/messages")
    assert provider.usage_from_body(route, MESSAGE) == Usage(10, 5)
    meter = provider.stream_meter(route, provider.parse(route, b'{"model": "m", "stream": true}'))
    meter.feed(STREAM)
    assert (meter.finish(), meter.complete) == (Usage(10, 5), True)


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head, await reader.readexactly(length)


async def test_keep_alive_and_pipelined_requests(fast: str) -> None:
    host, port = fast.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    plain, streaming = b'{"model":"m"}', b'{"model":"m","stream": true}'
    writer.write(POST % (len(plain), b"", plain) + POST % (len(streaming), b"", streaming))
    head1, body1 = await read_response(reader)
    head2, body2 = await read_response(reader)
    assert b"200 OK" in head1 and b"application/json" in head1 and body1 == MESSAGE
    assert b"text/event-stream" in head2 and body2 == STREAM
    writer.write(POST % (len(plain), b"connection: close\r\n", plain))
    head3, _ = await read_response(reader)
    assert b"connection: close" in head3
    assert await reader.read() == b""  # the server closed the connection
    writer.close()


async def test_garbage_gets_a_400_and_a_close(fast: str) -> None:
    host, port = fast.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 400")
    writer.close()


def test_command_line() -> None:
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "gatepass.testing.fast_upstream", "--port", str(port)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None and str(port) in process.stdout.readline()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/messages", data=b"{}", method="POST")
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.read() == MESSAGE
        finally:
            process.terminate()
            process.wait(timeout=10)
