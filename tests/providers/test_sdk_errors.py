"""The official SDKs, pointed at a tiny server that answers with our error bodies, raise the right errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
from aiohttp import web

from gatepass.providers import get_provider

MESSAGE = "The agent acme-research-dev has used its $50.00/month budget: raise it or wait for next month."


@pytest.fixture
async def refusing() -> AsyncIterator[str]:
    """A server answering ``/{provider}/{status}/...`` with that provider's error body for that status."""

    async def handle(request: web.Request) -> web.Response:
        provider, status = request.match_info["provider"], int(request.match_info["status"])
        body = get_provider(provider).error_body(status, "budget_exhausted", MESSAGE)
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{provider}/{status}/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (402, anthropic.PaymentRequiredError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (413, anthropic.ContentTooLargeError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (502, anthropic.InternalServerError),
        (504, anthropic.GatewayTimeoutError),
        (529, anthropic.OverloadedError),
    ],
)
async def test_anthropic_sdk_reads_our_error_body(refusing: str, status: int, error: type[Exception]) -> None:
    client = anthropic.AsyncAnthropic(base_url=f"{refusing}/anthropic/{status}", api_key="gp_test", max_retries=0)
    with pytest.raises(error) as info:
        await client.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    exc = info.value
    assert isinstance(exc, anthropic.APIStatusError)
    assert exc.status_code == status
    assert exc.api_message == MESSAGE
    assert MESSAGE in str(exc)
    assert exc.error_code == "budget_exhausted"  # the SDK's own field for a stable code


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (402, openai.APIStatusError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (502, openai.InternalServerError),
    ],
)
async def test_openai_sdk_reads_our_error_body(refusing: str, status: int, error: type[Exception]) -> None:
    client = openai.AsyncOpenAI(base_url=f"{refusing}/openai/{status}/v1", api_key="gp_test", max_retries=0)
    with pytest.raises(error) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    exc = info.value
    assert isinstance(exc, openai.APIStatusError)
    assert exc.status_code == status
    assert exc.code == "budget_exhausted"
    assert MESSAGE in exc.message


@pytest.mark.parametrize("provider", ["github", "http"])
async def test_generic_error_body_is_json_with_message_and_code(refusing: str, provider: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{refusing}/{provider}/403/repos") as response:
        assert response.status == 403
        assert await response.json() == {"message": MESSAGE, "code": "budget_exhausted", "status": "403"}
