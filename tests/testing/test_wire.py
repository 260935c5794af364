"""The fake upstream's wire builders: deterministic numbers, and shapes the SDK types accept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from gatepass.providers.sse import SseParser
from gatepass.testing import wire

REPLY = wire.Reply("m", input_tokens=11, output_tokens=3, limited=True, cache_read=5, cache_write=2, ident="t")


def events(stream: Any) -> list[tuple[str | None, Any, bool]]:
    parser = SseParser()
    out = []
    for chunk, is_content in stream:
        for event in parser.feed(chunk):
            out.append((event.event, event.data if event.data == "[DONE]" else json.loads(event.data), is_content))
    return out


def test_token_rules() -> None:
    assert wire.input_tokens_for(b"") == 1 and wire.input_tokens_for(b"x" * 41) == 10
    assert wire.output_tokens_for(None, 8) == 8 and wire.output_tokens_for(3, 8) == 3
    assert wire.reply_tokens(7) == ["Hello", " from", " the", " fake", " upstream", ".", "Hello"]
    assert REPLY.text == "Hello from the"


def test_anthropic_bodies_validate_as_sdk_types() -> None:
    message = Message.model_validate(wire.anthropic_message(REPLY))
    assert (message.usage.input_tokens, message.usage.output_tokens, message.stop_reason) == (11, 3, "max_tokens")
    seen = events(wire.anthropic_stream(REPLY))
    names = [name for name, _, _ in seen]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert sum(is_content for _, _, is_content in seen) == 3
    assert seen[-2][1]["usage"]["output_tokens"] == 3


def test_openai_bodies_validate_as_sdk_types() -> None:
    completion = ChatCompletion.model_validate(wire.chat_completion(REPLY))
    assert completion.usage is not None and completion.usage.prompt_tokens == 11 + 5 + 2
    with_usage = events(wire.chat_stream(REPLY, include_usage=True))
    assert with_usage[-1][1] == "[DONE]"
    last = ChatCompletionChunk.model_validate(with_usage[-2][1])
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens == 3
    without = events(wire.chat_stream(REPLY, include_usage=False))
    assert len(without) == len(with_usage) - 1 and all("usage" not in data for _, data, _ in without[:-1])
    response = Response.model_validate(wire.response_object(REPLY))
    assert response.status == "incomplete" and response.usage is not None and response.usage.input_tokens == 18


def test_answer_dispatch() -> None:
    body = json.dumps({"model": "m", "max_tokens": 2}).encode()
    message = wire.answer("messages", json.loads(body), body, 8)
    assert isinstance(message, dict) and message["usage"]["output_tokens"] == 2
    assert wire.answer("count_tokens", {"model": "m"}, body, 8) == {"input_tokens": wire.input_tokens_for(body)}
    vectors = wire.answer("embeddings", {"model": "e", "input": ["a", "b"], "dimensions": 2}, body, 8)
    assert isinstance(vectors, dict) and [d["embedding"] for d in vectors["data"]] == [[0.1, 0.2], [0.1, 0.2]]
    stream = wire.answer("chat", {"model": "m", "stream": True, "max_tokens": 1}, body, 8)
    assert not isinstance(stream, dict) and sum(flag for _, flag in stream) == 1


@pytest.mark.parametrize(("provider", "first"), [("anthropic", "claude-haiku-4-5-20251001"), ("openai", "gpt-4o-mini")])
def test_errors_and_model_lists(provider: str, first: str) -> None:
    page, by_id = wire.model_list(provider)
    assert page["data"][0]["id"] == first and first in by_id
    error = json.loads(wire.error_body(provider, 429, "slow down"))
    assert "slow down" in json.dumps(error)
