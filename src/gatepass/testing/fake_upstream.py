"""A fake Anthropic + OpenAI upstream on loopback, speaking the real wire formats (JSON and SSE).

::

    async with FakeUpstream() as fake:
        client = anthropic.AsyncAnthropic(base_url=fake.url, api_key="k")   # or openai: fake.url + "/v1"
        ...
        fake.requests[-1].json()["model"]

Routes: Anthropic ``POST /v1/messages`` (JSON or SSE), ``POST /v1/messages/count_tokens``; OpenAI
``POST /v1/chat/completions`` (JSON or SSE; the usage chunk only with ``stream_options.include_usage``),
``POST /v1/responses`` (JSON or SSE), ``POST /v1/embeddings``; ``GET /v1/models[/{id}]`` for both (a
request with ``anthropic-version`` or ``x-api-key`` is Anthropic's). Usage numbers: see ``wire``.

Every request is recorded (:attr:`FakeUpstream.requests`). Credentials are checked once a test sets
them (:meth:`expect_key`): ``x-api-key`` (or, as the anthropic SDK 2.x sends it, ``Authorization:
Bearer``) for Anthropic, ``Authorization: Bearer`` for OpenAI; a wrong or missing one gets a 401.
:meth:`fail_next` makes the next requests fail; the misbehaviour setters delay headers or chunks, cut a
stream, reset or hang the connection; :attr:`FakeUpstream.streams` counts the deltas each stream sent.
Command line: ``python -m gatepass.testing.fake_upstream --port 9100``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Final

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gatepass.testing import wire

__all__ = ["Behaviour", "Failure", "FakeUpstream", "RecordedRequest", "StreamStats", "fake_upstream_in_thread"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the fake received it (headers include the credential: this is test code)."""

    provider: str
    method: str
    path: str
    query: str
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Failure:
    """An answer that replaces the next request's: ``body`` None means the provider's error shape."""

    status: int
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Misbehaviour applied to every request until changed.

    ``cut_after``: send that many stream events (or half a JSON body) and drop the connection.
    ``reset``: drop the connection as soon as the request arrives. ``hang``: never answer.
    """

    header_delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    reset: bool = False
    hang: bool = False


@dataclass(slots=True)
class StreamStats:
    """One streamed answer: how many content deltas (one token each) were written, and how it ended."""

    provider: str
    chunks_sent: int = 0
    finished: bool = False
    disconnected: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class FakeUpstream:
    """The fake server; see the module docstring."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, reply_tokens: int = 8) -> None:
        self.host, self.port = host, port
        self.reply_tokens = reply_tokens
        self.cache_read_tokens = 0
        self.cache_write_tokens = 0
        #: What answers say, one output token per word, repeated as needed (None: the default words).
        self.reply_words: tuple[str, ...] | None = None
        self.behaviour = Behaviour()
        self.requests: list[RecordedRequest] = []
        self.streams: list[StreamStats] = []
        self._keys: dict[str, str] = {}
        self._failures: deque[Failure] = deque()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._count = 0

    # -- set-up ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def expect_key(self, provider: str, key: str | None) -> None:
        """Require ``key`` on requests to ``provider`` (``anthropic`` or ``openai``); None accepts any."""
        if key is None:
            self._keys.pop(provider, None)
        else:
            self._keys[provider] = key

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        body: bytes | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (e.g. 429 with ``retry_after``, 500, 529)."""
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        extra = dict(headers or {})
        if retry_after is not None:
            extra["retry-after"] = f"{retry_after:g}"
        self._failures.extend([Failure(status, raw, tuple(extra.items()))] * count)

    def set_header_delay(self, seconds: float) -> None:
        self.behaviour = replace(self.behaviour, header_delay=seconds)

    def set_chunk_delay(self, seconds: float) -> None:
        self.behaviour = replace(self.behaviour, chunk_delay=seconds)

    def set_cut_after(self, events: int | None) -> None:
        self.behaviour = replace(self.behaviour, cut_after=events)

    def set_reset(self, on: bool = True) -> None:
        self.behaviour = replace(self.behaviour, reset=on)

    def set_hang(self, on: bool = True) -> None:
        self.behaviour = replace(self.behaviour, hang=on)

    def set_slow_stream(self, tokens: int, interval: float) -> None:
        """Stream ``tokens`` content deltas, ``interval`` seconds apart; :attr:`streams` counts them."""
        self.reply_tokens = tokens
        self.set_chunk_delay(interval)

    def reset_behaviour(self) -> None:
        self.behaviour = Behaviour()
        self._failures.clear()

    @property
    def last_stream(self) -> StreamStats | None:
        return self.streams[-1] if self.streams else None

    # -- life cycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- handling ----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        provider = _provider_of(request)
        self.requests.append(
            RecordedRequest(
                provider,
                request.method,
                request.path,
                request.query_string,
                CIMultiDictProxy(CIMultiDict(request.headers)),
                body,
            )
        )
        self._count += 1
        how = self.behaviour
        if how.reset:
            _drop(request, reset=True)
            raise web.HTTPServiceUnavailable  # never sent: the connection is gone
        if how.hang:
            await self._closing.wait()
            _drop(request, reset=True)
            raise web.HTTPServiceUnavailable
        if how.header_delay:
            await asyncio.sleep(how.header_delay)
        if not self._authorised(provider, request):
            wrong = "invalid x-api-key" if provider == "anthropic" else "Incorrect API key provided."
            return _error(provider, 401, wrong)
        if self._failures:
            failure = self._failures.popleft()
            told = f"The fake upstream was told to fail with {failure.status}."
            raw = failure.body if failure.body is not None else wire.error_body(provider, failure.status, told)
            headers = {"content-type": "application/json", **dict(failure.headers)}
            return web.Response(status=failure.status, body=raw, headers=headers)
        try:
            return await self._answer(provider, request, body)
        except (ValueError, KeyError, TypeError):
            return _error(provider, 400, "The request body is not valid for this fake endpoint.")

    def _authorised(self, provider: str, request: web.Request) -> bool:
        expected = self._keys.get(provider)
        if expected is None:
            return True
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        # The anthropic SDK 2.x sends its key as a bearer token; older clients (and curl) use x-api-key.
        given = [bearer, request.headers.get("x-api-key", "")] if provider == "anthropic" else [bearer]
        return any(hmac.compare_digest(g.encode(), expected.encode()) for g in given)

    async def _answer(self, provider: str, request: web.Request, body: bytes) -> web.StreamResponse:
        path, method = request.path, request.method
        if method == "GET" and path.startswith("/v1/models"):
            return _models(provider, path.removeprefix("/v1/models").strip("/"))
        if method != "POST" or path not in _ENDPOINTS:
            return _error(provider, 404, f"Not found: {method} {path}")
        data = json.loads(body) if body else {}
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            return _error(provider, 400, "model: Field required")
        cache = (self.cache_read_tokens, self.cache_write_tokens)
        words = {"words": self.reply_words} if self.reply_words else {}
        answer = wire.answer(
            _ENDPOINTS[path], data, body, self.reply_tokens, cache, ident=f"fake{self._count:06d}", **words
        )
        if isinstance(answer, dict):
            return await self._send_json(provider, request, answer)
        return await self._stream(provider, request, answer)

    async def _send_json(self, provider: str, request: web.Request, answer: dict[str, Any]) -> web.StreamResponse:
        raw = json.dumps(answer).encode()
        if self.behaviour.cut_after is None:
            return web.Response(body=raw, content_type="application/json", headers=_ids(provider))
        response = web.StreamResponse(headers={"content-type": "application/json", **_ids(provider)})
        response.content_length = len(raw)
        await response.prepare(request)
        await response.write(raw[: len(raw) // 2])
        _drop(request, reset=False)
        return response

    async def _stream(
        self, provider: str, request: web.Request, events: Iterator[tuple[bytes, bool]]
    ) -> web.StreamResponse:
        stats = StreamStats(provider)
        self.streams.append(stats)
        how = self.behaviour
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache", **_ids(provider)}
        )
        try:
            await response.prepare(request)
            for sent, (chunk, is_content) in enumerate(events):
                if how.cut_after is not None and sent >= how.cut_after:
                    _drop(request, reset=False)
                    return response
                if how.chunk_delay and sent:
                    await asyncio.sleep(how.chunk_delay)
                await response.write(chunk)
                stats.chunks_sent += is_content
            await response.write_eof()
            stats.finished = True
        except (ConnectionError, asyncio.CancelledError):
            stats.disconnected = True
            raise
        finally:
            stats.done.set()
        return response


_ENDPOINTS: Final = {
    "/v1/messages": "messages",
    "/v1/messages/count_tokens": "count_tokens",
    "/v1/chat/completions": "chat",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
}


def _provider_of(request: web.Request) -> str:
    if request.path.startswith("/v1/messages"):
        return "anthropic"
    anthropic_headers = "anthropic-version" in request.headers or "x-api-key" in request.headers
    return "anthropic" if request.path.startswith("/v1/models") and anthropic_headers else "openai"


def _ids(provider: str) -> dict[str, str]:
    return {"request-id": "req_fake"} if provider == "anthropic" else {"x-request-id": "req_fake"}


def _error(provider: str, status: int, message: str) -> web.Response:
    headers = {"content-type": "application/json", **_ids(provider)}
    return web.Response(status=status, body=wire.error_body(provider, status, message), headers=headers)


def _models(provider: str, model_id: str) -> web.Response:
    page, by_id = wire.model_list(provider)
    if model_id and model_id not in by_id:
        return _error(provider, 404, f"model: {model_id}")
    return web.json_response(by_id[model_id] if model_id else page, headers=_ids(provider))


def _drop(request: web.Request, *, reset: bool) -> None:
    """Close the connection under the handler: with ``reset``, an RST rather than a FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if reset and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@contextlib.contextmanager
def fake_upstream_in_thread(**options: Any) -> Iterator[FakeUpstream]:
    """A FakeUpstream on its own event loop in a daemon thread, for tests that use blocking clients."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-upstream", daemon=True)
    thread.start()
    fake = FakeUpstream(**options)
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Anthropic + OpenAI upstream for demos and tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--reply-tokens", type=int, default=8)
    parser.add_argument("--anthropic-key", help="require this x-api-key")
    parser.add_argument("--openai-key", help="require this bearer token")
    args = parser.parse_args(argv)

    async def run() -> None:
        fake = FakeUpstream(host=args.host, port=args.port, reply_tokens=args.reply_tokens)
        fake.expect_key("anthropic", args.anthropic_key)
        fake.expect_key("openai", args.openai_key)
        async with fake:
            print(f"fake upstream on {fake.url} (Ctrl-C to stop)", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
