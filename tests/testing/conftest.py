"""A fake upstream per test, and SDK clients pointed straight at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from gatepass.testing.fake_upstream import FakeUpstream

ANTHROPIC_KEY = "fake-anthropic-key"
OPENAI_KEY = "fake-openai-key"
HI: list[MessageParam] = [{"role": "user", "content": "Say hello."}]
CHAT_HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as upstream:
        upstream.expect_key("anthropic", ANTHROPIC_KEY)
        upstream.expect_key("openai", OPENAI_KEY)
        yield upstream


@pytest.fixture
def claude(fake: FakeUpstream) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.url, api_key=ANTHROPIC_KEY, max_retries=0)


@pytest.fixture
def gpt(fake: FakeUpstream) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key=OPENAI_KEY, max_retries=0)
