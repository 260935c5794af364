"""The fake upstream driven by the real anthropic and openai SDKs: JSON, streams, models, recorded requests."""

from __future__ import annotations

import anthropic
import openai
import pytest

from gatepass.testing.fake_upstream import FakeUpstream, fake_upstream_in_thread
from gatepass.testing.wire import input_tokens_for, output_tokens_for, reply_tokens
from tests.testing.conftest import ANTHROPIC_KEY, CHAT_HI, HI, OPENAI_KEY


async def test_anthropic_message(fake: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
    body = fake.requests[-1].body
    assert message.usage.input_tokens == input_tokens_for(body)
    assert message.usage.output_tokens == output_tokens_for(5, fake.reply_tokens) == 5
    assert message.stop_reason == "max_tokens"
    assert message.content[0].type == "text" and message.content[0].text == "".join(reply_tokens(5))
    assert message.model == "claude-haiku-4-5"


async def test_anthropic_stream_helper(fake: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    fake.cache_read_tokens, fake.cache_write_tokens = 100, 40
    async with claude.messages.stream(model="claude-haiku-4-5", max_tokens=1000, messages=HI) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "".join(reply_tokens(fake.reply_tokens))
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == input_tokens_for(fake.requests[-1].body)
    assert final.usage.output_tokens == fake.reply_tokens
    assert (final.usage.cache_read_input_tokens, final.usage.cache_creation_input_tokens) == (100, 40)
    stats = fake.last_stream
    assert stats is not None and stats.finished and stats.chunks_sent == fake.reply_tokens


async def test_anthropic_count_tokens_and_models(fake: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    counted = await claude.messages.count_tokens(model="claude-haiku-4-5", messages=HI)
    assert counted.input_tokens == input_tokens_for(fake.requests[-1].body)
    ids = [model.id async for model in claude.models.list()]
    assert "claude-haiku-4-5-20251001" in ids
    assert (await claude.models.retrieve(ids[0])).id == ids[0]
    with pytest.raises(anthropic.NotFoundError):
        await claude.models.retrieve("claude-nonexistent")
    assert [r.provider for r in fake.requests] == ["anthropic"] * 4


async def test_openai_chat(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    completion = await gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI, max_completion_tokens=3)
    assert completion.choices[0].message.content == "".join(reply_tokens(3))
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == input_tokens_for(fake.requests[-1].body)
    assert completion.usage.completion_tokens == 3


async def test_openai_chat_stream_helper_with_usage(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    async with gpt.chat.completions.stream(
        model="gpt-4o-mini",
        messages=CHAT_HI,
        stream_options={"include_usage": True},
    ) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "".join(reply_tokens(fake.reply_tokens))
    assert final.usage is not None and final.usage.completion_tokens == fake.reply_tokens
    assert final.usage.prompt_tokens == input_tokens_for(fake.requests[-1].body)


async def test_openai_chat_stream_without_usage_has_no_usage_chunk(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    stream = await gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI, stream=True)
    chunks = [chunk async for chunk in stream]
    assert len(chunks) == fake.reply_tokens + 2
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(reply_tokens(fake.reply_tokens))


async def test_openai_responses(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    response = await gpt.responses.create(model="gpt-4o-mini", input="Say hello.", max_output_tokens=16)
    assert response.output_text == "".join(reply_tokens(8))
    assert response.usage is not None
    assert response.usage.input_tokens == input_tokens_for(fake.requests[-1].body)
    async with gpt.responses.stream(model="gpt-4o-mini", input="Say hello.") as stream:
        deltas = [event.delta async for event in stream if event.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert deltas == reply_tokens(fake.reply_tokens)
    assert final.output_text == "".join(deltas)
    assert final.usage is not None and final.usage.output_tokens == fake.reply_tokens
    assert final.usage.input_tokens == input_tokens_for(fake.requests[-1].body)


async def test_openai_embeddings_and_models(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    packed = await gpt.embeddings.create(model="text-embedding-3-small", input=["a", "b"])  # base64 by default
    assert [len(item.embedding) for item in packed.data] == [8, 8]
    assert packed.data[0].embedding[0] == pytest.approx(0.1)
    assert packed.usage.prompt_tokens == input_tokens_for(fake.requests[-1].body)
    plain = await gpt.embeddings.create(
        model="text-embedding-3-small", input="a", encoding_format="float", dimensions=4
    )
    assert plain.data[0].embedding == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert "gpt-4o-mini" in [model.id async for model in gpt.models.list()]
    assert (await gpt.models.retrieve("gpt-4o")).owned_by == "system"
    with pytest.raises(openai.NotFoundError):
        await gpt.models.retrieve("gpt-nonexistent")
    assert {r.provider for r in fake.requests} == {"openai"}


async def test_requests_are_recorded(
    fake: FakeUpstream, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI
) -> None:
    await claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
    await gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI, extra_query={"trace": "1"})
    first, second = fake.requests
    assert (first.provider, first.method, first.path) == ("anthropic", "POST", "/v1/messages")
    assert first.headers["authorization"] == f"Bearer {ANTHROPIC_KEY}"  # how the anthropic SDK 2.x sends it
    assert "anthropic-version" in first.headers
    assert first.json() == {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": HI}
    assert (second.provider, second.path, second.query) == ("openai", "/v1/chat/completions", "trace=1")
    assert second.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert second.json()["messages"] == HI


async def test_wrong_or_missing_keys_get_the_providers_401(fake: FakeUpstream) -> None:
    bad_claude = anthropic.AsyncAnthropic(base_url=fake.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError, match="x-api-key"):
        await bad_claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
    bad_gpt = openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await bad_gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI)
    assert info.value.code == "invalid_api_key"
    fake.expect_key("openai", None)  # accept any key again
    await bad_gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI)


async def test_anthropic_key_is_also_accepted_as_x_api_key(fake: FakeUpstream) -> None:
    import aiohttp

    headers = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 2, "messages": HI}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.url}/v1/messages", json=body, headers=headers) as r,
    ):
        assert r.status == 200
        assert (await r.json())["usage"]["output_tokens"] == 2
    async with aiohttp.ClientSession() as session, session.get(f"{fake.url}/v1/models", headers=headers) as r:
        assert (await r.json())["has_more"] is False  # an Anthropic-shaped list


def test_blocking_clients_against_a_threaded_fake() -> None:
    with fake_upstream_in_thread(reply_tokens=4) as fake:
        fake.expect_key("anthropic", ANTHROPIC_KEY)
        claude = anthropic.Anthropic(base_url=fake.url, api_key=ANTHROPIC_KEY, max_retries=0)
        assert claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HI).usage.output_tokens == 4
        with claude.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HI) as stream:
            assert "".join(stream.text_stream) == "".join(reply_tokens(4))
        gpt = openai.OpenAI(base_url=fake.url + "/v1", api_key=OPENAI_KEY, max_retries=0)
        with gpt.responses.stream(model="gpt-4o-mini", input="hi") as events:
            final = events.get_final_response()
        assert final.output_text == "".join(reply_tokens(4))
        chat = gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI)
        assert chat.usage is not None and chat.usage.completion_tokens == 4
        assert len(fake.requests) == 4
