"""Bodies and event streams of the Anthropic and OpenAI APIs, as the fake upstream sends them.

Usage numbers are deterministic so that tests can compute them too:

- input tokens = :func:`input_tokens_for` (one token per 4 bytes of the request body, at least 1);
- output tokens = :func:`output_tokens_for` (the configured reply length, capped by the request's
  ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens``);
- cache reads and writes are whatever the test configured (:class:`Reply`), reported on top of input.

The reply is :func:`reply_tokens` joined: each token is one word, and each content delta of a stream
carries exactly one token.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ANTHROPIC_MODELS",
    "OPENAI_MODELS",
    "Reply",
    "answer",
    "anthropic_error",
    "anthropic_message",
    "anthropic_stream",
    "chat_completion",
    "chat_stream",
    "embeddings",
    "error_body",
    "input_tokens_for",
    "model_list",
    "openai_error",
    "output_tokens_for",
    "reply_tokens",
    "response_object",
    "responses_stream",
    "sse",
]

ANTHROPIC_MODELS: Final = ("claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101")
OPENAI_MODELS: Final = ("gpt-4o-mini", "gpt-4o", "gpt-5-mini", "text-embedding-3-small")
_WORDS: Final = ("Hello", " from", " the", " fake", " upstream", ".")
_ANTHROPIC_ERRORS: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS: Final = {401: ("invalid_request_error", "invalid_api_key"), 429: ("rate_limit_exceeded", None)}


def input_tokens_for(body: bytes) -> int:
    """The fake's tokeniser: one input token per 4 bytes of request body, at least 1."""
    return max(1, len(body) // 4)


def output_tokens_for(max_tokens: int | None, reply_len: int) -> int:
    return reply_len if max_tokens is None else min(max_tokens, reply_len)


def reply_tokens(count: int, words: tuple[str, ...] = _WORDS) -> list[str]:
    return [words[i % len(words)] for i in range(count)]


@dataclass(frozen=True, slots=True)
class Reply:
    """What one answer holds: model, output tokens, input tokens and the configured cache counts."""

    model: str
    input_tokens: int
    output_tokens: int
    limited: bool  # cut short by the request's output cap
    cache_read: int = 0
    cache_write: int = 0
    ident: str = "fake"
    words: tuple[str, ...] = _WORDS  # what the answer says, one token each, repeated as needed

    @property
    def tokens(self) -> list[str]:
        return reply_tokens(self.output_tokens, self.words)

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event: ``event:`` line (when given), one ``data:`` line, blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


# -- Anthropic ---------------------------------------------------------------------------------------------


def anthropic_error(status: int, message: str, kind: str | None = None) -> dict[str, Any]:
    kind = kind or _ANTHROPIC_ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake_error"}


def _anthropic_usage(r: Reply, output: int) -> dict[str, Any]:
    return {
        "input_tokens": r.input_tokens,
        "output_tokens": output,
        "cache_creation_input_tokens": r.cache_write,
        "cache_read_input_tokens": r.cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": r.cache_write, "ephemeral_1h_input_tokens": 0},
        "service_tier": "standard",
    }


def anthropic_message(r: Reply) -> dict[str, Any]:
    return {
        "id": f"msg_{r.ident}",
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": [{"type": "text", "text": r.text}],
        "stop_reason": "max_tokens" if r.limited else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(r, r.output_tokens),
    }


def anthropic_stream(r: Reply) -> Iterator[tuple[bytes, bool]]:
    """The events of a streamed message; the flag marks content deltas (one output token each)."""
    start = {**anthropic_message(r), "content": [], "stop_reason": None, "usage": _anthropic_usage(r, 1)}
    yield sse({"type": "message_start", "message": start}, "message_start"), False
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    yield sse(block, "content_block_start"), False
    yield sse({"type": "ping"}, "ping"), False
    for token in r.tokens:
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}}
        yield sse(delta, "content_block_delta"), True
    yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop"), False
    stop = {"stop_reason": "max_tokens" if r.limited else "end_turn", "stop_sequence": None}
    usage = {k: v for k, v in _anthropic_usage(r, r.output_tokens).items() if k != "service_tier"}
    yield sse({"type": "message_delta", "delta": stop, "usage": usage}, "message_delta"), False
    yield sse({"type": "message_stop"}, "message_stop"), False


# -- OpenAI ------------------------------------------------------------------------------------------------


def openai_error(status: int, message: str, kind: str | None = None, code: str | None = None) -> dict[str, Any]:
    default_kind, default_code = _OPENAI_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": kind or default_kind, "param": None, "code": code or default_code}}


def _chat_usage(r: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": r.input_tokens + r.cache_read + r.cache_write,
        "completion_tokens": r.output_tokens,
        "total_tokens": r.input_tokens + r.cache_read + r.cache_write + r.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": r.cache_read,
            "cache_write_tokens": r.cache_write,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def chat_completion(r: Reply) -> dict[str, Any]:
    message = {"role": "assistant", "content": r.text, "refusal": None}
    choice = {"index": 0, "message": message, "finish_reason": "length" if r.limited else "stop", "logprobs": None}
    return {
        "id": f"chatcmpl-{r.ident}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": r.model,
        "choices": [choice],
        "usage": _chat_usage(r),
        "system_fingerprint": "fp_fake",
    }


def chat_stream(r: Reply, *, include_usage: bool) -> Iterator[tuple[bytes, bool]]:
    """Chunks of a streamed chat completion, the usage chunk only when asked for, then ``[DONE]``."""
    base: dict[str, Any] = {"id": f"chatcmpl-{r.ident}", "object": "chat.completion.chunk", "created": 1_700_000_000}
    base |= {"model": r.model, "system_fingerprint": "fp_fake"}
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return sse({**base, "choices": [choice]})

    yield chunk({"role": "assistant", "content": "", "refusal": None}), False
    for token in r.tokens:
        yield chunk({"content": token}), True
    yield chunk({}, "length" if r.limited else "stop"), False
    if include_usage:
        yield sse({**base, "choices": [], "usage": _chat_usage(r)}), False
    yield sse("[DONE]"), False


def _responses_usage(r: Reply) -> dict[str, Any]:
    details = {"cached_tokens": r.cache_read, "cache_write_tokens": r.cache_write}
    total_in = r.input_tokens + r.cache_read + r.cache_write
    return {
        "input_tokens": total_in,
        "input_tokens_details": details,
        "output_tokens": r.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": total_in + r.output_tokens,
    }


def _output_message(r: Reply, text: str, status: str) -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" else []
    )
    return {"id": f"msg_{r.ident}", "type": "message", "status": status, "role": "assistant", "content": content}


def response_object(r: Reply, status: str = "completed", max_output_tokens: int | None = None) -> dict[str, Any]:
    done = status != "in_progress"
    return {
        "id": f"resp_{r.ident}",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "incomplete" if done and r.limited else status,
        "model": r.model,
        "output": [_output_message(r, r.text, "completed")] if done else [],
        "usage": _responses_usage(r) if done else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if done and r.limited else None,
        "instructions": None,
        "max_output_tokens": max_output_tokens,
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "top_p": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "metadata": {},
    }


def responses_stream(r: Reply, max_output_tokens: int | None = None) -> Iterator[tuple[bytes, bool]]:
    """The event sequence of a streamed response, ending in ``response.completed`` (or ``.incomplete``)."""
    seq = 0

    def event(name: str, **fields: Any) -> bytes:
        nonlocal seq
        seq += 1
        return sse({"type": name, "sequence_number": seq - 1, **fields}, name)

    item_id = f"msg_{r.ident}"
    pending = response_object(r, "in_progress", max_output_tokens)
    yield event("response.created", response=pending), False
    yield event("response.in_progress", response=pending), False
    yield event("response.output_item.added", output_index=0, item=_output_message(r, "", "in_progress")), False
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    yield event("response.content_part.added", **where, part=part), False
    for token in r.tokens:
        yield event("response.output_text.delta", **where, delta=token, logprobs=[]), True
    yield event("response.output_text.done", **where, text=r.text, logprobs=[]), False
    yield event("response.content_part.done", **where, part={**part, "text": r.text}), False
    yield event("response.output_item.done", output_index=0, item=_output_message(r, r.text, "completed")), False
    final = response_object(r, "completed", max_output_tokens)
    name = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    yield event(name, response=final), False


def embeddings(model: str, inputs: int, dimensions: int, tokens: int, *, as_base64: bool) -> dict[str, Any]:
    vector = [round(0.1 * (i + 1), 3) for i in range(dimensions)]
    packed = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
    data = [{"object": "embedding", "index": i, "embedding": packed if as_base64 else vector} for i in range(inputs)]
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def error_body(provider: str, status: int, message: str) -> bytes:
    """The provider's error body for ``status``."""
    shaped = anthropic_error(status, message) if provider == "anthropic" else openai_error(status, message)
    return json.dumps(shaped).encode()


def model_list(provider: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The provider's ``GET /v1/models`` page, and its models by id."""
    items: list[dict[str, Any]]
    if provider == "anthropic":
        made = "2025-10-01T00:00:00Z"
        items = [{"type": "model", "id": m, "display_name": m, "created_at": made} for m in ANTHROPIC_MODELS]
        page = {"data": items, "has_more": False, "first_id": items[0]["id"], "last_id": items[-1]["id"]}
    else:
        items = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "system"} for m in OPENAI_MODELS]
        page = {"object": "list", "data": items}
    return page, {str(item["id"]): item for item in items}


def answer(
    endpoint: str,
    data: dict[str, Any],
    body: bytes,
    reply_len: int,
    cache: tuple[int, int] = (0, 0),
    ident: str = "fake",
    words: tuple[str, ...] = _WORDS,
) -> dict[str, Any] | Iterator[tuple[bytes, bool]]:
    """The answer to a request of ``endpoint`` (messages, count_tokens, chat, responses, embeddings):
    a JSON object, or the events of a stream when the request asked for one."""
    if endpoint == "count_tokens":
        return {"input_tokens": input_tokens_for(body)}
    if endpoint == "embeddings":
        inputs = data["input"]
        n = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
        dimensions = int(data.get("dimensions") or 8)
        as_b64 = data.get("encoding_format") == "base64"
        return embeddings(data["model"], n, dimensions, input_tokens_for(body), as_base64=as_b64)
    cap_field = {"messages": "max_tokens", "responses": "max_output_tokens"}.get(endpoint, "max_completion_tokens")
    cap = data.get(cap_field) if endpoint != "chat" else data.get(cap_field, data.get("max_tokens"))
    out = output_tokens_for(cap, reply_len)
    limited = cap is not None and cap < reply_len
    reply = Reply(data["model"], input_tokens_for(body), out, limited, cache[0], cache[1], ident, words)
    if data.get("stream"):
        if endpoint == "messages":
            return anthropic_stream(reply)
        if endpoint == "chat":
            return chat_stream(reply, include_usage=bool((data.get("stream_options") or {}).get("include_usage")))
        return responses_stream(reply, cap)
    if endpoint == "messages":
        return anthropic_message(reply)
    return chat_completion(reply) if endpoint == "chat" else response_object(reply, max_output_tokens=cap)
