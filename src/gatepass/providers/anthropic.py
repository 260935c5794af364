"""The Anthropic Messages API: ``/v1/messages`` (metered), ``count_tokens`` and ``models``.

Usage of a streamed message is ``message_start``'s ``message.usage`` (input, cache tokens and an
initial output count) overwritten by the last ``message_delta``'s cumulative ``usage`` (output always;
newer API versions also repeat input and cache counts there). The usage is complete once the
``message_delta`` with the stop reason arrived; a stream cut before it reports the input from
``message_start`` and the larger of the last reported output count and the number of content deltas
passed (each carries at least one token), with ``complete`` False.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from gatepass.providers.base import (
    NoUsageMeter,
    RemoteScan,
    SseWatchingMeter,
    count,
    get_path,
    load_json,
    load_object,
    opt_bool,
    opt_positive_int,
    opt_str,
)
from gatepass.providers.interface import UNKNOWN_ROUTE, LlmRequest, Provider, Route, RouteKind, StreamMeter, Usage
from gatepass.providers.sse import SseEvent

__all__ = ["ANTHROPIC_ERROR_TYPES", "AnthropicProvider", "AnthropicStreamMeter"]

ANTHROPIC_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "api_error",
    529: "overloaded_error",
}

_MESSAGES: Final = Route(RouteKind.MESSAGES, known=True, metered=True, model_in_body=True)
_COUNT_TOKENS: Final = Route(RouteKind.COUNT_TOKENS, known=True, metered=False, model_in_body=True)
_MODELS: Final = Route(RouteKind.MODELS, known=True)
_MODEL_PATH: Final = re.compile(r"/v1/models/[A-Za-z0-9._:@-]+")
_REMOTE_KEYS: Final = ("file_id", "mcp_servers", "container")
_SERVER_TOOLS: Final = ("web_search_", "web_fetch_", "code_execution_", "mcp_", "tool_search_tool_")


def _wording(field: str, expected: str) -> str:
    return f"{field}: Input should be {expected}"


class AnthropicProvider(Provider):
    """The Anthropic API as the official ``anthropic`` SDK speaks it."""

    name = "anthropic"

    def route(self, method: str, path: str) -> Route:
        path = path.split("?", 1)[0]
        method = method.upper()
        if method == "POST" and path == "/v1/messages":
            return _MESSAGES
        if method == "POST" and path == "/v1/messages/count_tokens":
            return _COUNT_TOKENS
        if method == "GET" and (path == "/v1/models" or _MODEL_PATH.fullmatch(path)):
            return _MODELS
        return UNKNOWN_ROUTE

    def parse(self, route: Route, body: bytes) -> LlmRequest:
        if not (route.metered or route.model_in_body):
            return LlmRequest(None, None, stream=False, wants_usage_chunk=False, input_bytes=len(body))
        scan = RemoteScan(_REMOTE_KEYS, _SERVER_TOOLS) if route.metered else None
        data = load_object(body, _wording, scan)
        model = opt_str(data, "model", _wording, required=route.model_in_body)
        max_tokens = opt_positive_int(data, "max_tokens", _wording) if route.metered else None
        stream = opt_bool(data, "stream", _wording) if route.metered else False
        return LlmRequest(
            model=model,
            max_output_tokens=max_tokens,
            stream=stream,
            wants_usage_chunk=False,
            input_bytes=len(body),
            remote_input=scan is not None and scan.found,
            modifiers=_modifiers(data),
        )

    def usage_from_body(self, route: Route, body: bytes) -> Usage | None:
        if route.kind is not RouteKind.MESSAGES:
            return None
        data = load_json(body, "usage")
        if get_path(data, "type") == "error":
            return None
        fields = _UsageFields()
        fields.update(get_path(data, "usage"))
        return fields.usage()

    def stream_meter(self, route: Route, req: LlmRequest) -> StreamMeter:
        return AnthropicStreamMeter() if route.kind is RouteKind.MESSAGES else NoUsageMeter()

    def error_body(self, status: int, code: str, message: str) -> bytes:
        kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        # ``details.error_code`` is where the SDK finds a stable code (``APIStatusError.error_code``).
        error = {"type": kind, "message": message, "details": {"error_code": code}}
        return json.dumps({"type": "error", "error": error}, separators=(",", ":")).encode()


def _modifiers(data: dict[str, Any]) -> tuple[str, ...]:
    found = []
    speed = data.get("speed")
    if speed is not None and speed != "standard":
        found.append(f"speed={speed}")
    geo = data.get("inference_geo")
    if geo is not None and geo != "global":
        found.append(f"inference_geo={geo}")
    return tuple(found)


class _UsageFields:
    """Usage counts as they arrive; later reports overwrite earlier ones (they are cumulative)."""

    def __init__(self) -> None:
        self.input: int | None = None
        self.output: int | None = None
        self.cache_write = 0
        self.cache_write_1h = 0
        self.cache_read = 0

    def update(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        if (value := count(usage.get("input_tokens"))) is not None:
            self.input = value
        if (value := count(usage.get("output_tokens"))) is not None:
            self.output = value
        if (value := count(usage.get("cache_creation_input_tokens"))) is not None:
            self.cache_write = value
        if (value := count(usage.get("cache_read_input_tokens"))) is not None:
            self.cache_read = value
        if (value := count(get_path(usage, "cache_creation", "ephemeral_1h_input_tokens"))) is not None:
            self.cache_write_1h = value

    def usage(self, *, min_output: int = 0) -> Usage | None:
        if self.input is None or (self.output is None and not min_output):
            return None
        return Usage(
            input_tokens=self.input,
            output_tokens=max(self.output or 0, min_output),
            cache_write_tokens=self.cache_write,
            cache_read_tokens=self.cache_read,
            cache_write_1h_tokens=min(self.cache_write_1h, self.cache_write),
        )


class AnthropicStreamMeter(SseWatchingMeter):
    """Pass-through meter of a streamed Messages response."""

    def __init__(self) -> None:
        super().__init__()
        self._fields = _UsageFields()
        self._started = False
        self._deltas = 0

    def on_event(self, event: SseEvent) -> None:
        name = event.event
        if name == "content_block_delta":
            if '"signature_delta"' not in event.data and '"partial_json":""' not in event.data:
                self._deltas += 1
        elif name == "message_start":
            self._started = True
            self._fields.update(get_path(load_json(event.data.encode(), "message", "usage"), "message", "usage"))
        elif name == "message_delta":
            data = load_json(event.data.encode(), "usage")
            self._fields.update(get_path(data, "usage"))
            # The delta that carries the stop reason carries the final (cumulative) usage.
            self._complete = self._started and get_path(data, "delta", "stop_reason") is not None
        elif name == "message_stop":
            self._complete = self._started

    def finish(self) -> Usage | None:
        if not self._started:
            return None
        return self._fields.usage(min_output=0 if self._complete else self._deltas)
