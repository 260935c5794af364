"""The OpenAI API: chat completions, responses and embeddings (metered), and models.

Paths are ``/v1/...`` because the SDK's base URL ends in ``/v1``. Usage of a chat stream arrives only
in a final chunk (``choices: []`` with ``usage``) that OpenAI sends when the request set
``stream_options.include_usage``; gatepass always asks for it and, when the client did not, removes
that chunk again so the client sees the stream it asked for. A responses stream carries usage in its
``response.completed`` (or ``response.incomplete`` / ``response.failed``) event.
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
from gatepass.providers.sse import SseEvent, SseParser

__all__ = ["OPENAI_ERROR_TYPES", "ChatStreamMeter", "OpenAIProvider", "ResponsesStreamMeter"]

OPENAI_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}

_ROUTES: Final = {
    "/v1/chat/completions": Route(RouteKind.CHAT_COMPLETIONS, known=True, metered=True, model_in_body=True),
    "/v1/responses": Route(RouteKind.RESPONSES, known=True, metered=True, model_in_body=True),
    "/v1/embeddings": Route(RouteKind.EMBEDDINGS, known=True, metered=True, model_in_body=True),
}
_MODELS: Final = Route(RouteKind.MODELS, known=True)
_MODEL_PATH: Final = re.compile(r"/v1/models/[A-Za-z0-9._:@-]+")
_REMOTE_KEYS: Final = ("file_id", "previous_response_id", "conversation", "prompt", "web_search_options")
_SERVER_TOOLS: Final = ("web_search", "file_search", "mcp", "code_interpreter", "image_generation")
_TERMINAL: Final = frozenset({"response.completed", "response.incomplete", "response.failed"})
_TYPE_RE: Final = re.compile(r'"type"\s*:\s*"(response\.[a-z_.]+)"')
_USAGE_OPTION: Final = b'"stream_options":{"include_usage":true}'


def _wording(field: str, expected: str) -> str:
    if field == "body":
        return f"We could not parse the JSON body of your request: send {expected}."
    return f"Invalid value for '{field}': expected {expected}."


class OpenAIProvider(Provider):
    """The OpenAI API as the official ``openai`` SDK speaks it."""

    name = "openai"

    def route(self, method: str, path: str) -> Route:
        path = path.split("?", 1)[0]
        method = method.upper()
        if method == "POST" and path in _ROUTES:
            return _ROUTES[path]
        if method == "GET" and (path == "/v1/models" or _MODEL_PATH.fullmatch(path)):
            return _MODELS
        return UNKNOWN_ROUTE

    def parse(self, route: Route, body: bytes) -> LlmRequest:
        if not (route.metered or route.model_in_body):
            return LlmRequest(None, None, stream=False, wants_usage_chunk=False, input_bytes=len(body))
        scan = RemoteScan(_REMOTE_KEYS, _SERVER_TOOLS) if route.metered else None
        data = load_object(body, _wording, scan)
        model = opt_str(data, "model", _wording, required=True)
        stream = opt_bool(data, "stream", _wording) if route.kind is not RouteKind.EMBEDDINGS else False
        max_output: int | None = None
        wants_usage = False
        if route.kind is RouteKind.CHAT_COMPLETIONS:
            max_output = _chat_max_output(data)
            options = data.get("stream_options")
            if options is not None and not isinstance(options, dict):
                raise BadRequest("invalid_request", _wording("stream_options", "an object"))
            wants_usage = stream and opt_bool(options or {}, "include_usage", _wording)
        elif route.kind is RouteKind.RESPONSES:
            max_output = opt_positive_int(data, "max_output_tokens", _wording)
            if opt_bool(data, "background", _wording):
                raise BadRequest(
                    "background_not_supported",
                    "Background responses are not supported through gatepass (their usage cannot be metered): "
                    "remove 'background'.",
                )
        tier = data.get("service_tier")
        return LlmRequest(
            model=model,
            max_output_tokens=max_output,
            stream=stream,
            wants_usage_chunk=wants_usage,
            input_bytes=len(body),
            remote_input=scan is not None and scan.found,
            modifiers=(f"service_tier={tier}",) if tier == "priority" else (),
        )

    def prepare(self, route: Route, req: LlmRequest, body: bytes) -> bytes:
        if route.kind is not RouteKind.CHAT_COMPLETIONS or not req.stream or req.wants_usage_chunk:
            return body
        data = load_object(body, _wording)
        if "stream_options" not in data:
            # Insert the option after the opening brace: every other byte stays as the client sent it.
            start = body.index(b"{") + 1
            empty = body[start:].lstrip().startswith(b"}")
            return body[:start] + _USAGE_OPTION + (b"" if empty else b",") + body[start:]
        options = dict(data["stream_options"] or {})
        options["include_usage"] = True
        data["stream_options"] = options
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    def usage_from_body(self, route: Route, body: bytes) -> Usage | None:
        if route.kind not in _ROUTES_WITH_USAGE:
            return None
        data = load_json(body, "usage")
        if not isinstance(data, dict) or data.get("error") is not None:
            return None
        if route.kind is RouteKind.RESPONSES:
            return _responses_usage(data.get("usage"))
        if route.kind is RouteKind.EMBEDDINGS:
            tokens = count(get_path(data, "usage", "prompt_tokens"))
            return None if tokens is None else Usage(input_tokens=tokens, output_tokens=0)
        return _chat_usage(data.get("usage"))

    def stream_meter(self, route: Route, req: LlmRequest) -> StreamMeter:
        if route.kind is RouteKind.CHAT_COMPLETIONS:
            return ChatStreamMeter(strip_usage=not req.wants_usage_chunk)
        if route.kind is RouteKind.RESPONSES:
            return ResponsesStreamMeter()
        return NoUsageMeter()

    def error_body(self, status: int, code: str, message: str) -> bytes:
        kind = OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        error = {"message": message, "type": kind, "param": None, "code": code}
        return json.dumps({"error": error}, separators=(",", ":")).encode()


_ROUTES_WITH_USAGE: Final = frozenset({RouteKind.CHAT_COMPLETIONS, RouteKind.RESPONSES, RouteKind.EMBEDDINGS})


def _chat_max_output(data: dict[str, Any]) -> int | None:
    limits = [v for k in ("max_completion_tokens", "max_tokens") if (v := opt_positive_int(data, k, _wording))]
    choices = opt_positive_int(data, "n", _wording) or 1
    if not limits:
        if choices > 1:
            raise BadRequest(
                "invalid_request",
                "Invalid value for 'n': gatepass needs 'max_completion_tokens' to bound the cost of several choices.",
            )
        return None
    return max(limits) * choices


def _split_input(total: int | None, details: Any) -> Usage | None:
    """Turn an OpenAI input count (which includes cached tokens) into gatepass's disjoint counts."""
    if total is None:
        return None
    cached = count(get_path(details, "cached_tokens")) or 0
    written = count(get_path(details, "cache_write_tokens")) or 0
    cached, written = min(cached, total), min(written, max(total - cached, 0))
    return Usage(
        input_tokens=total - cached - written, output_tokens=0, cache_write_tokens=written, cache_read_tokens=cached
    )


def _chat_usage(usage: Any) -> Usage | None:
    split = _split_input(count(get_path(usage, "prompt_tokens")), get_path(usage, "prompt_tokens_details"))
    output = count(get_path(usage, "completion_tokens"))
    if split is None or output is None:
        return None
    return Usage(split.input_tokens, output, split.cache_write_tokens, split.cache_read_tokens)


def _responses_usage(usage: Any) -> Usage | None:
    split = _split_input(count(get_path(usage, "input_tokens")), get_path(usage, "input_tokens_details"))
    output = count(get_path(usage, "output_tokens"))
    if split is None or output is None:
        return None
    return Usage(split.input_tokens, output, split.cache_write_tokens, split.cache_read_tokens)


class ChatStreamMeter(StreamMeter):
    """Meter of a chat completions stream; with ``strip_usage`` it removes the usage-only chunk.

    Without ``strip_usage`` every chunk passes through unchanged. With it, whole events pass as soon
    as they are complete, except the final ``choices: []`` chunk; ``data: [DONE]`` still goes through.
    """

    def __init__(self, *, strip_usage: bool) -> None:
        self._strip = strip_usage
        self._parser = SseParser(keep_raw=strip_usage)
        self._usage: Usage | None = None
        self._complete = False
        self._after_cr = False  # the last block ended in \r
        self._kept = True  # the last block was passed on

    def feed(self, chunk: bytes) -> bytes:
        events = self._parser.feed(chunk)
        if not self._strip:
            for event in events:
                self._read(event)
            return chunk
        out = []
        for event in events:
            raw, kept = event.raw, not self._read(event)
            # A \r\n split across chunks leaves its \n at the start of the next block: it goes (or not)
            # with the block before, so that dropping a block never adds or removes a line end.
            if self._after_cr and raw.startswith(b"\n") and kept != self._kept:
                if self._kept:
                    out.append(b"\n")
                raw = raw[1:]
            if kept:
                out.append(raw)
            self._after_cr, self._kept = raw.endswith(b"\r"), kept
        return b"".join(out)

    def _read(self, event: SseEvent) -> bool:
        """Note the usage an event carries; True when it is the usage-only chunk."""
        if not event.has_data or '"usage"' not in event.data:
            return False
        data = load_json(event.data.encode(), "usage")
        usage = _chat_usage(get_path(data, "usage"))
        if usage is None:
            return False
        self._usage = usage
        final: bool = get_path(data, "choices") == []
        self._complete = self._complete or final
        return final

    def flush(self) -> bytes:
        if not self._strip:
            return b""
        pending = self._parser.pending
        return pending[1:] if self._after_cr and not self._kept and pending.startswith(b"\n") else pending

    def finish(self) -> Usage | None:
        return self._usage

    @property
    def complete(self) -> bool:
        return self._complete


class ResponsesStreamMeter(SseWatchingMeter):
    """Pass-through meter of a responses stream: usage comes with the terminal ``response.*`` event."""

    def __init__(self) -> None:
        super().__init__()
        self._usage: Usage | None = None

    def on_event(self, event: SseEvent) -> None:
        name = event.event
        if name is None:
            match = _TYPE_RE.search(event.data, 0, 200)
            name = match.group(1) if match else None
        if name in _TERMINAL:
            data = load_json(event.data.encode(), "response", "usage")
            usage = _responses_usage(get_path(data, "response", "usage"))
            if usage is not None:
                self._usage = usage
                self._complete = True

    def finish(self) -> Usage | None:
        return self._usage
