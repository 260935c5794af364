"""An in-memory fake Provider for unit tests of the gateway's other parts.

Its wire format is tiny and made up, so a test can write requests and responses by hand::

    POST /v1/generate    metered; body {"model": "m", "max_tokens": 10, "stream": false}
    POST /v1/free        known, not metered, no model
    anything else        unknown

    response body        {"usage": {"input_tokens": 3, "output_tokens": 5,
                                    "cache_write_tokens": 0, "cache_read_tokens": 0}}
    stream               SSE events whose data is such a body; the last one with usage wins;
                         ``data: [DONE]`` ends the stream (``complete``)
    error body           {"error": {"code": ..., "message": ..., "status": ...}}

A test can make ``parse`` fail (``fail_parse``) and see every call (``calls``).
"""

from __future__ import annotations

import json
from typing import Final

from gatepass.providers.base import (
    SseWatchingMeter,
    count,
    get_path,
    load_json,
    load_object,
    opt_bool,
    opt_positive_int,
    opt_str,
)
from gatepass.providers.interface import (
    UNKNOWN_ROUTE,
    BadRequest,
    LlmRequest,
    Provider,
    Route,
    RouteKind,
    StreamMeter,
    Usage,
)
from gatepass.providers.sse import SseEvent

__all__ = ["FakeProvider", "FakeStreamMeter"]

GENERATE: Final = Route(RouteKind.MESSAGES, known=True, metered=True, model_in_body=True)
FREE: Final = Route(RouteKind.OTHER, known=True)


def _wording(field: str, expected: str) -> str:
    return f"{field} must be {expected}"


def fake_usage(data: object) -> Usage | None:
    """Usage from a fake body's ``usage`` object, or None."""
    usage = get_path(data, "usage")
    numbers = [count(get_path(usage, key)) for key in ("input_tokens", "output_tokens")]
    if numbers[0] is None or numbers[1] is None:
        return None
    return Usage(
        input_tokens=numbers[0],
        output_tokens=numbers[1],
        cache_write_tokens=count(get_path(usage, "cache_write_tokens")) or 0,
        cache_read_tokens=count(get_path(usage, "cache_read_tokens")) or 0,
    )


class FakeProvider(Provider):
    """A provider with a made-up wire format (see the module docstring)."""

    name = "fake"

    def __init__(self, *, fail_parse: BadRequest | None = None) -> None:
        self.fail_parse = fail_parse
        self.calls: list[str] = []

    def route(self, method: str, path: str) -> Route:
        self.calls.append("route")
        path = path.split("?", 1)[0]
        if method.upper() == "POST" and path == "/v1/generate":
            return GENERATE
        if method.upper() == "POST" and path == "/v1/free":
            return FREE
        return UNKNOWN_ROUTE

    def parse(self, route: Route, body: bytes) -> LlmRequest:
        self.calls.append("parse")
        if self.fail_parse is not None:
            raise self.fail_parse
        if not route.model_in_body:
            return LlmRequest(None, None, stream=False, wants_usage_chunk=False, input_bytes=len(body))
        data = load_object(body, _wording)
        return LlmRequest(
            model=opt_str(data, "model", _wording, required=True),
            max_output_tokens=opt_positive_int(data, "max_tokens", _wording),
            stream=opt_bool(data, "stream", _wording),
            wants_usage_chunk=False,
            input_bytes=len(body),
        )

    def usage_from_body(self, route: Route, body: bytes) -> Usage | None:
        self.calls.append("usage_from_body")
        return fake_usage(load_json(body)) if route.metered else None

    def stream_meter(self, route: Route, req: LlmRequest) -> StreamMeter:
        self.calls.append("stream_meter")
        return FakeStreamMeter()

    def error_body(self, status: int, code: str, message: str) -> bytes:
        self.calls.append("error_body")
        return json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()


class FakeStreamMeter(SseWatchingMeter):
    """Pass-through meter of the fake stream format."""

    def __init__(self) -> None:
        super().__init__()
        self._usage: Usage | None = None

    def on_event(self, event: SseEvent) -> None:
        if event.data == "[DONE]":
            self._complete = True
        elif (usage := fake_usage(load_json(event.data.encode()))) is not None:
            self._usage = usage

    def finish(self) -> Usage | None:
        return self._usage
