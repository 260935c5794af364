"""The fake upstream's failures and misbehaviour, seen through the SDKs; and its streams, metered by our plugins."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys

import aiohttp
import anthropic
import httpx2
import openai
import pytest

from gatepass.providers import Usage, get_provider
from gatepass.testing.fake_upstream import FakeUpstream
from gatepass.testing.wire import input_tokens_for
from tests.testing.conftest import ANTHROPIC_KEY, CHAT_HI, HI, OPENAI_KEY

BROKEN = (anthropic.APIConnectionError, openai.APIConnectionError, httpx2.HTTPError)


async def test_fail_next_with_retry_after_is_retried_by_the_sdk(fake: FakeUpstream) -> None:
    fake.fail_next(status=429, retry_after=0)
    retrying = anthropic.AsyncAnthropic(base_url=fake.url, api_key=ANTHROPIC_KEY, max_retries=1)
    message = await retrying.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
    assert message.usage.output_tokens == 5
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("status", "anthropic_error", "openai_error"),
    [
        (429, anthropic.RateLimitError, openai.RateLimitError),
        (500, anthropic.InternalServerError, openai.InternalServerError),
        (529, anthropic.OverloadedError, openai.InternalServerError),
    ],
)
async def test_fail_next_raises_the_sdks_matching_errors(
    fake: FakeUpstream,
    claude: anthropic.AsyncAnthropic,
    gpt: openai.AsyncOpenAI,
    status: int,
    anthropic_error: type[Exception],
    openai_error: type[Exception],
) -> None:
    fake.fail_next(2, status=status, retry_after=3)
    with pytest.raises(anthropic_error) as a_info:
        await claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
    with pytest.raises(openai_error):
        await gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI)
    assert isinstance(a_info.value, anthropic.APIStatusError)
    assert a_info.value.response.headers["retry-after"] == "3"
    await claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)  # the queue is used up


async def test_fail_next_with_a_custom_body(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    fake.fail_next(status=400, body={"error": {"message": "nope", "type": "invalid_request_error", "code": "x"}})
    with pytest.raises(openai.BadRequestError) as info:
        await gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI)
    assert info.value.code == "x"


async def test_header_delay_and_hang_time_out(fake: FakeUpstream, gpt: openai.AsyncOpenAI) -> None:
    fake.set_header_delay(2.0)
    with pytest.raises(openai.APITimeoutError):
        await gpt.with_options(timeout=0.2).chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI)
    fake.reset_behaviour()
    fake.set_hang()
    with pytest.raises(openai.APITimeoutError):
        await gpt.with_options(timeout=0.2).chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI)


async def test_reset_drops_the_connection(fake: FakeUpstream, claude: anthropic.AsyncAnthropic) -> None:
    fake.set_reset()
    with pytest.raises(anthropic.APIConnectionError):
        await claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HI)
    assert len(fake.requests) == 1  # it was received, then dropped


async def test_cut_stream_and_cut_body(
    fake: FakeUpstream, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI
) -> None:
    fake.set_cut_after(4)  # message_start, content_block_start, ping, one delta
    with pytest.raises(BROKEN):
        async with claude.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HI) as stream:
            async for _ in stream.text_stream:
                pass
    stats = fake.last_stream
    assert stats is not None and stats.chunks_sent == 1 and not stats.finished
    with pytest.raises(BROKEN):
        await gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI)


async def test_a_slow_stream_counts_what_it_sent_when_the_client_leaves(
    fake: FakeUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    fake.set_slow_stream(tokens=200, interval=0.01)
    got = 0
    async with claude.messages.stream(model="claude-haiku-4-5", max_tokens=1000, messages=HI) as stream:
        async for _ in stream.text_stream:
            got += 1
            if got == 3:
                break
    stats = fake.last_stream
    assert stats is not None
    await asyncio.wait_for(stats.done.wait(), timeout=10)
    assert stats.disconnected and not stats.finished
    assert 3 <= stats.chunks_sent < 200


# -- the fake's streams, metered by the provider plugins ---------------------------------------------------


async def metered(
    fake: FakeUpstream, provider: str, path: str, body: dict[str, object], chunk: int
) -> tuple[Usage | None, bool, bytes]:
    plugin = get_provider(provider)
    route = plugin.route("POST", path)
    raw = json.dumps(body).encode()
    request = plugin.parse(route, raw)
    sent = plugin.prepare(route, request, raw)
    key = ANTHROPIC_KEY if provider == "anthropic" else OPENAI_KEY
    meter = plugin.stream_meter(route, request)
    out = b""
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    async with aiohttp.ClientSession() as session, session.post(fake.url + path, data=sent, headers=headers) as r:
        async for piece in r.content.iter_chunked(chunk):
            out += meter.feed(piece)
    out += meter.flush()
    return meter.finish(), meter.complete, out


@pytest.mark.parametrize("chunk", [1, 7, 4096])
async def test_fake_streams_metered_by_the_plugins(fake: FakeUpstream, chunk: int) -> None:
    fake.cache_read_tokens = 30
    body = {"model": "claude-haiku-4-5", "max_tokens": 6, "stream": True, "messages": HI}
    usage, complete, _ = await metered(fake, "anthropic", "/v1/messages", body, chunk)
    assert complete and usage == Usage(input_tokens_for(fake.requests[-1].body), 6, cache_read_tokens=30)

    chat = {"model": "gpt-4o-mini", "stream": True, "messages": HI}
    usage, complete, out = await metered(fake, "openai", "/v1/chat/completions", chat, chunk)
    sent = fake.requests[-1].body
    assert json.loads(sent)["stream_options"] == {"include_usage": True}  # asked for by gatepass
    assert complete and usage == Usage(input_tokens_for(sent), 8, cache_read_tokens=30)
    assert b'"choices":[]' not in out and out.endswith(b"data: [DONE]\n\n")  # ... and hidden from the client

    responses = {"model": "gpt-4o-mini", "stream": True, "input": "hi"}
    usage, complete, _ = await metered(fake, "openai", "/v1/responses", responses, chunk)
    assert complete and usage == Usage(input_tokens_for(fake.requests[-1].body), 8, cache_read_tokens=30)


def test_command_line_serves_until_stopped() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "gatepass.testing.fake_upstream", "--port", str(port), "--reply-tokens", "3"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            assert f"127.0.0.1:{port}" in process.stdout.readline()
            gpt = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="any", max_retries=0)
            reply = gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT_HI)
            assert reply.usage is not None and reply.usage.completion_tokens == 3
        finally:
            process.terminate()
            process.wait(timeout=10)
