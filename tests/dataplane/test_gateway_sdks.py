"""The official SDKs, unchanged but for base URL and key, through the gateway to the fake upstream."""

from __future__ import annotations

import asyncio
import json
import time

import anthropic
import openai

from gatepass.metering.prices import PriceTable
from gatepass.providers import Usage
from gatepass.testing import wire
from tests.dataplane.harness import Setup

HAIKU = "claude-haiku-4-5-20251001"


def _cost(provider: str, model: str, usage: Usage) -> int:
    price = PriceTable.load().lookup(provider, model)
    assert price is not None
    return price.cost_micros(usage)


def test_anthropic_sync_message_is_forwarded_with_the_real_secret_and_metered(setup: Setup) -> None:
    client = anthropic.Anthropic(base_url=setup.url + "/anthropic", api_key=setup.key)
    message = client.messages.create(model=HAIKU, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text  # type: ignore[union-attr]
    (seen,) = setup.fake.requests
    assert seen.headers.get("x-api-key") == setup.secrets["anthropic"]
    for name, value in seen.headers.items():
        assert setup.key not in value, name
    (record,) = setup.audit()
    meta = record["meta"]
    usage = Usage(message.usage.input_tokens, message.usage.output_tokens)
    assert (meta["input_tokens"], meta["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert meta["cost_micros"] == _cost("anthropic", HAIKU, usage) > 0
    assert record["decision"] == "allow" and meta["status"] == 200
    agent = setup.spend()["agents"][0]
    month = next(p for p in agent["periods"] if p["period"] == "month")
    assert month["spent_micros"] == meta["cost_micros"] and month["reserved_micros"] == 0
    deadline = time.monotonic() + 5  # the gateway writes "last used" behind, once a second
    while json.loads(setup.gp("key", "list", "--json").out)[0]["last_used_at"] is None:
        assert time.monotonic() < deadline, "last use never recorded"
        time.sleep(0.1)
    assert json.loads(setup.gp("key", "list", "--json").out)[0]["last_used_ip"] == "127.0.0.1"


def test_anthropic_stream_is_passed_through_and_metered(setup: Setup) -> None:
    client = anthropic.Anthropic(base_url=setup.url + "/anthropic", api_key=setup.key)
    with client.messages.stream(model=HAIKU, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "".join(wire.reply_tokens(final.usage.output_tokens))
    (record,) = setup.audit_streamed()
    assert record["meta"]["stream"] is True
    assert record["meta"]["output_tokens"] == final.usage.output_tokens
    usage = Usage(final.usage.input_tokens, final.usage.output_tokens)
    assert record["meta"]["cost_micros"] == _cost("anthropic", HAIKU, usage)


def test_anthropic_async_client(setup: Setup) -> None:
    async def main() -> str:
        client = anthropic.AsyncAnthropic(base_url=setup.url + "/anthropic", api_key=setup.key)
        message = await client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "x"}])
        tokens = await client.messages.count_tokens(model=HAIKU, messages=[{"role": "user", "content": "x"}])
        models = await client.models.list()
        await client.close()
        assert tokens.input_tokens > 0 and models.data
        return message.id

    assert asyncio.run(main())
    records = setup.audit()
    assert [r["meta"]["path"] for r in records] == ["/v1/messages", "/v1/messages/count_tokens", "/v1/models"]
    assert [r["meta"]["cost_micros"] > 0 for r in records] == [True, False, False]


def test_openai_chat_stream_without_usage_gets_no_usage_chunk_but_is_metered(setup: Setup) -> None:
    client = openai.OpenAI(base_url=setup.url + "/openai/v1", api_key=setup.key)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", stream=True, max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        )
    )
    assert chunks and all(c.usage is None for c in chunks)
    assert setup.fake.requests[-1].json()["stream_options"] == {"include_usage": True}
    (record,) = setup.audit_streamed()
    assert record["meta"]["cost_micros"] > 0 and record["meta"]["output_tokens"] > 0


def test_openai_chat_stream_with_usage_and_non_stream_and_responses_and_embeddings(setup: Setup) -> None:
    client = openai.OpenAI(base_url=setup.url + "/openai/v1", api_key=setup.key)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "hi"}],
        )
    )
    assert chunks[-1].usage is not None
    completion = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert completion.usage is not None
    response = client.responses.create(model="gpt-5-mini", input="hello")
    assert response.usage is not None
    with client.responses.stream(model="gpt-5-mini", input="hello") as stream:
        final = stream.get_final_response()
    assert final.usage is not None
    embedded = client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert embedded.data
    records = setup.audit()
    assert len(records) == 5 and all(r["meta"]["cost_micros"] > 0 for r in records)
    usage = completion.usage
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
    expected = _cost(
        "openai", "gpt-4o", Usage(usage.prompt_tokens - (cached or 0), usage.completion_tokens, 0, cached or 0)
    )
    assert records[1]["meta"]["cost_micros"] == expected
