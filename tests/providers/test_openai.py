"""The OpenAI provider: routes, parsing, the usage option, usage from bodies and streams, error bodies."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatepass.providers import BadRequest, LlmRequest, Route, RouteKind, Usage, get_provider
from gatepass.providers.openai import OpenAIProvider
from gatepass.testing import wire

P = OpenAIProvider()
CHAT = P.route("POST", "/v1/chat/completions")
RESPONSES = P.route("POST", "/v1/responses")
EMBEDDINGS = P.route("POST", "/v1/embeddings")

_HEAD = (
    b'{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741570283,'
    b'"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8",'
)
FIRST = b"data: " + _HEAD + b'"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
FIRST += b'"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
HELLO = b"data: " + _HEAD + b'"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]'
HELLO += b',"usage":null}\n\n'
STOP = (
    b"data: " + _HEAD + b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n'
)
USAGE = b"data: " + _HEAD + b'"choices":[],"usage":{"prompt_tokens":1019,"completion_tokens":10,"total_tokens":1029,'
USAGE += b'"prompt_tokens_details":{"cached_tokens":1000,"audio_tokens":0},"completion_tokens_details":'
USAGE += b'{"reasoning_tokens":4,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\n'
DONE = b"data: [DONE]\n\n"
CHAT_STREAM = FIRST + b": keep-alive\n\n" + HELLO + STOP + USAGE + DONE
CHAT_USAGE = Usage(input_tokens=19, output_tokens=10, cache_read_tokens=1000)


def parse(route: Route, **body: Any) -> LlmRequest:
    return P.parse(route, json.dumps({"model": "gpt-4o-mini", **body}).encode())


@pytest.mark.parametrize(
    ("method", "path", "kind", "metered"),
    [
        ("POST", "/v1/chat/completions", RouteKind.CHAT_COMPLETIONS, True),
        ("POST", "/v1/responses", RouteKind.RESPONSES, True),
        ("POST", "/v1/embeddings", RouteKind.EMBEDDINGS, True),
        ("POST", "/v1/embeddings?x=1", RouteKind.EMBEDDINGS, True),
        ("GET", "/v1/models", RouteKind.MODELS, False),
        ("GET", "/v1/models/gpt-4o-mini", RouteKind.MODELS, False),
    ],
)
def test_known_routes(method: str, path: str, kind: RouteKind, metered: bool) -> None:
    route = P.route(method, path)
    assert (route.kind, route.known, route.metered, route.model_in_body) == (kind, True, metered, metered)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/batches"),
        ("POST", "/v1/images/generations"),
        ("GET", "/v1/responses/resp_1"),
        ("POST", "/chat/completions"),
        ("POST", "/v1/chat/completions/"),
    ],
)
def test_unknown_routes(method: str, path: str) -> None:
    assert P.route(method, path) == Route(RouteKind.OTHER, known=False)
    assert get_provider("openai").route(method, path).known is False


def test_parse_chat() -> None:
    r = parse(CHAT, max_completion_tokens=100, stream=True, stream_options={"include_usage": True})
    assert (r.model, r.max_output_tokens, r.stream, r.wants_usage_chunk) == ("gpt-4o-mini", 100, True, True)
    assert parse(CHAT, max_tokens=50).max_output_tokens == 50  # the legacy name
    assert parse(CHAT, max_tokens=50, max_completion_tokens=80).max_output_tokens == 80  # the larger cap
    assert parse(CHAT, max_completion_tokens=100, n=3).max_output_tokens == 300  # n choices
    assert parse(CHAT).max_output_tokens is None
    assert parse(CHAT, stream=False, stream_options={"include_usage": True}).wants_usage_chunk is False


def test_parse_responses_and_embeddings() -> None:
    r = parse(RESPONSES, max_output_tokens=500, stream=True, input="hi")
    assert (r.max_output_tokens, r.stream, r.wants_usage_chunk) == (500, True, False)
    e = parse(EMBEDDINGS, input=["a", "b"])
    assert (e.model, e.max_output_tokens, e.stream) == ("gpt-4o-mini", None, False)


def test_parse_flags_remote_input_and_priority_tier() -> None:
    assert parse(RESPONSES, previous_response_id="resp_1", input="hi").remote_input
    assert parse(RESPONSES, tools=[{"type": "web_search"}], input="hi").remote_input
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    assert parse(CHAT, messages=[{"role": "user", "content": [image]}]).remote_input
    inline = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert not parse(CHAT, messages=[{"role": "user", "content": [inline]}]).remote_input
    assert parse(CHAT, service_tier="priority").modifiers == ("service_tier=priority",)
    assert parse(CHAT, service_tier="flex").modifiers == ()


@pytest.mark.parametrize(
    ("route", "body", "fragment"),
    [
        (CHAT, b"", "JSON"),
        (CHAT, b'"just a string"', "JSON object"),
        (CHAT, b'{"messages": []}', "'model'"),
        (CHAT, b'{"model": ["gpt-4o"]}', "'model'"),
        (CHAT, b'{"model": "m", "max_tokens": -1}', "'max_tokens'"),
        (CHAT, b'{"model": "m", "max_completion_tokens": "9"}', "'max_completion_tokens'"),
        (CHAT, b'{"model": "m", "n": 0}', "'n'"),
        (CHAT, b'{"model": "m", "n": 2}', "'n'"),  # several choices need a cap
        (CHAT, b'{"model": "m", "stream": 1}', "'stream'"),
        (CHAT, b'{"model": "m", "stream": true, "stream_options": []}', "'stream_options'"),
        (CHAT, b'{"model": "m", "stream": true, "stream_options": {"include_usage": "yes"}}', "'include_usage'"),
        (RESPONSES, b'{"model": "m", "max_output_tokens": 0}', "'max_output_tokens'"),
        (RESPONSES, b'{"model": "m", "background": true}', "background"),
        (EMBEDDINGS, b'{"input": "x"}', "'model'"),
    ],
)
def test_parse_refuses_malformed_requests(route: Route, body: bytes, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        P.parse(route, body)
    assert fragment in info.value.message
    assert "\n" not in info.value.message


def test_prepare_adds_the_usage_option_keeping_the_other_bytes() -> None:
    body = b' {"model": "gpt-4o-mini",  "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    sent = P.prepare(CHAT, P.parse(CHAT, body), body)
    assert sent == b' {"stream_options":{"include_usage":true},' + body[2:]
    assert json.loads(sent)["stream_options"] == {"include_usage": True}


def test_prepare_rewrites_an_existing_option() -> None:
    body = b'{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":false,"include_obfuscation":false}}'
    sent = json.loads(P.prepare(CHAT, P.parse(CHAT, body), body))
    assert sent["stream_options"] == {"include_usage": True, "include_obfuscation": False}
    assert sent["model"] == "gpt-4o-mini" and sent["stream"] is True
    null = b'{"model":"gpt-4o-mini","stream":true,"stream_options":null}'
    assert json.loads(P.prepare(CHAT, P.parse(CHAT, null), null))["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (CHAT, b'{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}'),
        (CHAT, b'{"model":"gpt-4o-mini"}'),
        (RESPONSES, b'{"model":"gpt-4o-mini","stream":true}'),
        (EMBEDDINGS, b'{"model":"text-embedding-3-small","input":"x"}'),
    ],
)
def test_prepare_leaves_other_requests_alone(route: Route, body: bytes) -> None:
    assert P.prepare(route, P.parse(route, body), body) is body


def test_usage_from_bodies() -> None:
    chat = {"usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                      "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 100},
                      "completion_tokens_details": {"reasoning_tokens": 200}}}  # fmt: skip
    assert P.usage_from_body(CHAT, json.dumps(chat).encode()) == Usage(76, 300, 100, 1024)
    responses = {"status": "completed", "usage": {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 20},
                 "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 57}}  # fmt: skip
    assert P.usage_from_body(RESPONSES, json.dumps(responses).encode()) == Usage(30, 7, 0, 20)
    embeddings = {"object": "list", "usage": {"prompt_tokens": 8, "total_tokens": 8}}
    assert P.usage_from_body(EMBEDDINGS, json.dumps(embeddings).encode()) == Usage(8, 0)


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (CHAT, json.dumps(wire.openai_error(429, "Rate limit reached")).encode()),
        (CHAT, b"upstream connect error"),
        (CHAT, b'{"usage": null}'),
        (RESPONSES, b'{"status": "queued", "usage": null}'),
        (EMBEDDINGS, b'{"usage": {"prompt_tokens": "8"}}'),
        (P.route("GET", "/v1/models"), b'{"usage": {"prompt_tokens": 1, "completion_tokens": 1}}'),
    ],
)
def test_no_usage_from_errors_or_garbage(route: Route, body: bytes) -> None:
    assert P.usage_from_body(route, body) is None


def chat_meter_run(chunks: list[bytes], *, wants: bool) -> tuple[bytes, Usage | None, bool]:
    req = LlmRequest("gpt-4o", None, stream=True, wants_usage_chunk=wants, input_bytes=10)
    meter = P.stream_meter(CHAT, req)
    out = b"".join(meter.feed(chunk) for chunk in chunks) + meter.flush()
    return out, meter.finish(), meter.complete


def test_chat_stream_asked_for_usage_passes_every_chunk_unchanged() -> None:
    for i in range(len(CHAT_STREAM) + 1):
        assert chat_meter_run([CHAT_STREAM[:i], CHAT_STREAM[i:]], wants=True) == (CHAT_STREAM, CHAT_USAGE, True), i


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_chat_stream_not_asked_for_usage_loses_the_usage_chunk_at_every_split(eol: bytes) -> None:
    stream = CHAT_STREAM.replace(b"\n", eol)
    expected = (FIRST + b": keep-alive\n\n" + HELLO + STOP + DONE).replace(b"\n", eol)
    for i in range(len(stream) + 1):
        assert chat_meter_run([stream[:i], stream[i:]], wants=False) == (expected, CHAT_USAGE, True), i


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([b"\n", b"\r\n", b"\r"]), st.lists(st.integers(0, len(CHAT_STREAM) * 2), max_size=6))
def test_chat_stream_stripping_under_any_split(eol: bytes, cuts: list[int]) -> None:
    stream = CHAT_STREAM.replace(b"\n", eol)
    bounds = [0, *sorted(min(c, len(stream)) for c in cuts), len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    out, usage, complete = chat_meter_run(chunks, wants=False)
    assert out == stream.replace(USAGE.replace(b"\n", eol), b"")
    assert (usage, complete) == (CHAT_USAGE, True)


def test_chat_stream_stripping_passes_whole_events_as_soon_as_they_end() -> None:
    req = LlmRequest("gpt-4o", None, stream=True, wants_usage_chunk=False, input_bytes=10)
    meter = P.stream_meter(CHAT, req)
    assert meter.feed(FIRST[:-1]) == b""  # not yet complete
    assert meter.feed(FIRST[-1:] + HELLO[:5]) == FIRST
    assert meter.feed(HELLO[5:]) == HELLO[:5] + HELLO[5:]
    assert meter.feed(USAGE) == b""
    assert meter.feed(DONE + b"data: {") == DONE
    assert meter.flush() == b"data: {"  # a trailing half event is still handed back


def test_chat_stream_cut_before_the_usage_chunk_reports_nothing() -> None:
    out, usage, complete = chat_meter_run([FIRST + HELLO], wants=False)
    assert out == FIRST + HELLO and usage is None and not complete


def test_responses_stream_at_every_split() -> None:
    reply = wire.Reply("gpt-4o-mini", input_tokens=40, output_tokens=3, limited=False, cache_read=10)
    stream = b"".join(chunk for chunk, _ in wire.responses_stream(reply))
    req = parse(RESPONSES, stream=True, input="hi")
    for i in range(len(stream) + 1):
        meter = P.stream_meter(RESPONSES, req)
        assert meter.feed(stream[:i]) + meter.feed(stream[i:]) == stream
        assert (meter.finish(), meter.complete) == (Usage(40, 3, 0, 10), True), i


def test_responses_stream_without_event_lines_and_cut_short() -> None:
    reply = wire.Reply("gpt-4o-mini", input_tokens=5, output_tokens=2, limited=False)
    events = [chunk for chunk, _ in wire.responses_stream(reply)]
    bare = b"".join(e.split(b"\n", 1)[1] for e in events)  # drop the "event:" lines
    meter = P.stream_meter(RESPONSES, parse(RESPONSES, stream=True))
    meter.feed(bare)
    assert (meter.finish(), meter.complete) == (Usage(5, 2), True)
    cut = P.stream_meter(RESPONSES, parse(RESPONSES, stream=True))
    cut.feed(b"".join(events[:-1]))
    assert (cut.finish(), cut.complete) == (None, False)


def test_embeddings_stream_meter_has_no_usage() -> None:
    meter = P.stream_meter(EMBEDDINGS, parse(EMBEDDINGS, input="x"))
    assert meter.feed(b"abc") == b"abc" and meter.finish() is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "insufficient_quota"),
        (403, "permission_error"),
        (404, "invalid_request_error"),
        (429, "rate_limit_exceeded"),
        (500, "server_error"),
        (502, "server_error"),
        (504, "server_error"),
    ],
)
def test_error_body_shape(status: int, kind: str) -> None:
    body = json.loads(P.error_body(status, "key_revoked", "This gatepass key was revoked."))
    assert body == {
        "error": {"message": "This gatepass key was revoked.", "type": kind, "param": None, "code": "key_revoked"}
    }
