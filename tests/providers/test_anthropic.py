"""The Anthropic provider: routes, request parsing, usage from bodies and streams, error bodies."""

from __future__ import annotations

import json

import pytest

from gatepass.providers import BadRequest, LlmRequest, Route, RouteKind, Usage, get_provider
from gatepass.providers.anthropic import AnthropicProvider

P = AnthropicProvider()
MESSAGES = P.route("POST", "/v1/messages")

# A stream as the API sends it (shape of the documented example), with cache tokens and a ping.
STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message",'
    b'"role":"assistant","content":[],"model":"claude-haiku-4-5-20251001","stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":25,"cache_creation_input_tokens":40,"cache_read_input_tokens":100,'
    b'"cache_creation":{"ephemeral_5m_input_tokens":30,"ephemeral_1h_input_tokens":10},"output_tokens":1}}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":0}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    b'"usage":{"output_tokens":15}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)
STREAM_USAGE = Usage(
    input_tokens=25, output_tokens=15, cache_write_tokens=40, cache_read_tokens=100, cache_write_1h_tokens=10
)


def req(**kw: object) -> LlmRequest:
    return P.parse(MESSAGES, json.dumps({"model": "claude-haiku-4-5", "max_tokens": 64, **kw}).encode())


@pytest.mark.parametrize(
    ("method", "path", "kind", "known", "metered", "model_in_body"),
    [
        ("POST", "/v1/messages", RouteKind.MESSAGES, True, True, True),
        ("post", "/v1/messages?beta=true", RouteKind.MESSAGES, True, True, True),
        ("POST", "/v1/messages/count_tokens", RouteKind.COUNT_TOKENS, True, False, True),
        ("GET", "/v1/models", RouteKind.MODELS, True, False, False),
        ("GET", "/v1/models/claude-haiku-4-5", RouteKind.MODELS, True, False, False),
        ("GET", "/v1/messages", RouteKind.OTHER, False, False, False),
        ("POST", "/v1/messages/batches", RouteKind.OTHER, False, False, False),
        ("POST", "/v1/complete", RouteKind.OTHER, False, False, False),
        ("GET", "/v1/models/a/b", RouteKind.OTHER, False, False, False),
        ("DELETE", "/v1/models", RouteKind.OTHER, False, False, False),
    ],
)
def test_routes(method: str, path: str, kind: RouteKind, known: bool, metered: bool, model_in_body: bool) -> None:
    assert P.route(method, path) == Route(kind, known, metered, model_in_body)


def test_registry_returns_the_plugins() -> None:
    assert isinstance(get_provider("anthropic"), AnthropicProvider)


def test_parse_a_request() -> None:
    parsed = req(stream=True, messages=[{"role": "user", "content": "hi"}])
    assert parsed.model == "claude-haiku-4-5"
    assert parsed.max_output_tokens == 64
    assert parsed.stream is True
    assert parsed.wants_usage_chunk is False
    assert parsed.remote_input is False and parsed.modifiers == ()


def test_parse_counts_body_bytes_and_reads_count_tokens() -> None:
    body = b'{"model": "claude-haiku-4-5", "messages": []}'
    parsed = P.parse(P.route("POST", "/v1/messages/count_tokens"), body)
    assert (parsed.model, parsed.max_output_tokens, parsed.input_bytes) == ("claude-haiku-4-5", None, len(body))


def test_parse_flags_remote_input_and_price_modifiers() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    assert req(messages=[{"role": "user", "content": [image]}]).remote_input
    doc = {"type": "document", "source": {"type": "file", "file_id": "file_011"}}
    assert req(messages=[{"role": "user", "content": [doc]}]).remote_input
    assert req(tools=[{"type": "web_search_20250305", "name": "web_search"}]).remote_input
    assert not req(tools=[{"name": "get_weather", "input_schema": {"type": "object"}}]).remote_input
    assert req(mcp_servers=[{"type": "url", "url": "https://mcp.example.com/sse", "name": "x"}]).remote_input
    assert not req(mcp_servers=[], container=None).remote_input
    assert req(speed="fast", inference_geo="us").modifiers == ("speed=fast", "inference_geo=us")
    assert req(speed="standard").modifiers == ()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "body"),
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"max_tokens": 5}', "model"),
        (b'{"model": 7, "max_tokens": 5}', "model"),
        (b'{"model": "", "max_tokens": 5}', "model"),
        (b'{"model": "m", "max_tokens": "5"}', "max_tokens"),
        (b'{"model": "m", "max_tokens": 0}', "max_tokens"),
        (b'{"model": "m", "max_tokens": true}', "max_tokens"),
        (b'{"model": "m", "max_tokens": 5.5}', "max_tokens"),
        (b'{"model": "m", "max_tokens": 5, "stream": "yes"}', "stream"),
        (b'{"model": "cheap", "model": "dear", "max_tokens": 5}', "repeated keys"),
    ],
)
def test_parse_refuses_malformed_requests(body: bytes, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        P.parse(MESSAGES, body)
    assert info.value.status == 400
    assert fragment in info.value.message
    assert "\n" not in info.value.message
    assert "dear" not in info.value.message and "cheap" not in info.value.message  # no body content


def test_prepare_returns_the_same_bytes() -> None:
    body = b'{"model":"m","max_tokens":5,"stream":true}'
    assert P.prepare(MESSAGES, P.parse(MESSAGES, body), body) is body


def test_usage_from_a_message_body() -> None:
    body = json.dumps(
        {
            "type": "message",
            "usage": {
                "input_tokens": 12,
                "output_tokens": 34,
                "cache_creation_input_tokens": 50,
                "cache_read_input_tokens": 60,
                "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 30},
            },
        }
    ).encode()
    assert P.usage_from_body(MESSAGES, body) == Usage(12, 34, 50, 60, cache_write_1h_tokens=30)
    assert P.usage_from_body(MESSAGES, b'{"usage": {"input_tokens": 1, "output_tokens": 2}}') == Usage(1, 2)


@pytest.mark.parametrize(
    "body",
    [
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
        b"<html>bad gateway</html>",
        b'{"usage": {"input_tokens": -1, "output_tokens": 2}}',
        b'{"usage": {"output_tokens": 2}}',
        b"{}",
    ],
)
def test_no_usage_from_errors_or_garbage(body: bytes) -> None:
    assert P.usage_from_body(MESSAGES, body) is None


def test_count_tokens_and_models_have_no_usage() -> None:
    body = b'{"usage": {"input_tokens": 1, "output_tokens": 2}}'
    assert P.usage_from_body(P.route("POST", "/v1/messages/count_tokens"), body) is None


def meter_run(chunks: list[bytes]) -> tuple[bytes, Usage | None, bool]:
    meter = P.stream_meter(MESSAGES, req(stream=True))
    out = b"".join(meter.feed(chunk) for chunk in chunks) + meter.flush()
    return out, meter.finish(), meter.complete


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_stream_meter_at_every_split(eol: bytes) -> None:
    stream = STREAM.replace(b"\n", eol)
    for i in range(len(stream) + 1):
        out, usage, complete = meter_run([stream[:i], stream[i:]])
        assert out == stream, i  # pass-through, byte for byte
        assert usage == STREAM_USAGE, i
        assert complete, i


def test_stream_meter_passes_each_chunk_at_once() -> None:
    meter = P.stream_meter(MESSAGES, req(stream=True))
    for i in range(0, len(STREAM), 7):
        chunk = STREAM[i : i + 7]
        assert meter.feed(chunk) is chunk


def test_stream_meter_takes_input_and_cache_counts_from_a_later_message_delta() -> None:
    late = STREAM.replace(b'"usage":{"output_tokens":15}', b'"usage":{"output_tokens":15,"input_tokens":30}')
    assert meter_run([late])[1] == Usage(30, 15, 40, 100, 10)


def test_stream_cut_before_the_end_charges_what_is_known() -> None:
    cut = STREAM[: STREAM.index(b"event: content_block_stop")]  # two deltas passed, no message_delta
    out, usage, complete = meter_run([cut])
    assert out == cut
    assert not complete
    assert usage == Usage(25, 2, 40, 100, 10)  # input from message_start; at least one token per delta


def test_stream_cut_after_the_final_message_delta_is_complete() -> None:
    _, usage, complete = meter_run([STREAM[: STREAM.index(b"event: message_stop")]])
    assert complete and usage == STREAM_USAGE


def test_stream_cut_before_message_start_reports_nothing() -> None:
    _, usage, complete = meter_run([b"event: message_start\ndata: {"])
    assert usage is None and not complete


def test_stream_with_an_error_event_is_incomplete() -> None:
    head = STREAM[: STREAM.index(b"event: content_block_stop")]
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    _, usage, complete = meter_run([head + error])
    assert not complete and usage is not None and usage.output_tokens == 2


def test_non_message_routes_get_a_meter_without_usage() -> None:
    meter = P.stream_meter(P.route("GET", "/v1/models"), req())
    assert meter.feed(b"x") == b"x" and meter.finish() is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (504, "api_error"),
        (529, "overloaded_error"),
        (418, "invalid_request_error"),
        (599, "api_error"),
    ],
)
def test_error_body_shape(status: int, kind: str) -> None:
    body = json.loads(P.error_body(status, "budget_exhausted", "The agent's budget is used up."))
    assert body == {
        "type": "error",
        "error": {
            "type": kind,
            "message": "The agent's budget is used up.",
            "details": {"error_code": "budget_exhausted"},
        },
    }
