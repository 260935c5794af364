"""A minimal, very fast fake upstream for benchmarks: raw asyncio protocol, httptools, uvloop if present.

Every request gets the same Anthropic-shaped answer, with keep-alive: a fixed non-streaming message,
or, when the request body asks for ``"stream": true``, a short fixed SSE stream. Usage is always 10
input and 5 output tokens. It checks nothing and records nothing; use ``fake_upstream`` for tests.

Command line: ``python -m gatepass.testing.fast_upstream --port 9200``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
from typing import Final, cast

import httptools

__all__ = ["MESSAGE", "STREAM", "FastUpstreamProtocol", "serve"]

MESSAGE: Final = json.dumps(
    {
        "id": "msg_fast",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    },
    separators=(",", ":"),
).encode()


def _event(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


_START: Final = {
    **json.loads(MESSAGE),
    "content": [],
    "stop_reason": None,
    "usage": {"input_tokens": 10, "output_tokens": 1},
}
STREAM: Final = b"".join(
    [
        _event("message_start", {"type": "message_start", "message": _START}),
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        _event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        ),
        _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        ),
        _event("message_stop", {"type": "message_stop"}),
    ]
)


def _response(content_type: bytes, body: bytes, *, close: bool) -> bytes:
    connection = b"close" if close else b"keep-alive"
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\nrequest-id: req_fast\r\nconnection: %s\r\n\r\n"
    )
    return head % (content_type, len(body), connection) + body


_JSON: Final = _response(b"application/json", MESSAGE, close=False)
_SSE: Final = _response(b"text/event-stream", STREAM, close=False)
_JSON_CLOSE: Final = _response(b"application/json", MESSAGE, close=True)
_SSE_CLOSE: Final = _response(b"text/event-stream", STREAM, close=True)
_STREAM_RE: Final = re.compile(rb'"stream"\s*:\s*true')
_MAX_BODY: Final = 1024 * 1024  # only the start of a body is looked at


class FastUpstreamProtocol(asyncio.Protocol):
    """One connection: parse requests with httptools, answer each from the fixed bytes above."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._body.clear()

    def on_body(self, body: bytes) -> None:
        if len(self._body) < _MAX_BODY:
            self._body += body

    def on_message_complete(self) -> None:
        if self._transport is None:
            return
        stream = _STREAM_RE.search(self._body) is not None
        keep = self._parser.should_keep_alive()
        self._transport.write((_SSE if stream else _JSON) if keep else (_SSE_CLOSE if stream else _JSON_CLOSE))
        if not keep:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve(host: str, port: int) -> asyncio.Server:
    """Start listening; the caller owns the returned server (``close()`` then ``wait_closed()``)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(FastUpstreamProtocol, host, port, backlog=1024, reuse_address=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A very fast fixed-answer Anthropic-shaped upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args(argv)

    async def run() -> None:
        server = await serve(args.host, args.port)
        print(f"fast upstream on http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
        async with server:
            await server.serve_forever()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not available on Windows
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(run())


if __name__ == "__main__":
    main()
