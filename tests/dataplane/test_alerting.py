"""Spend thresholds and the runaway breaker, end to end: a real webhook receiver and SMTP server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller

from gatepass.alerts import SIGNATURE_HEADER, verify_signature
from gatepass.sensitive import Secret
from gatepass.testing.fake_upstream import fake_upstream_in_thread
from tests.conftest import Gp
from tests.dataplane.harness import GatewayThread, Setup, prepare_home

HAIKU = "claude-haiku-4-5-20251001"


@dataclass
class Inbox:
    mails: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(envelope)
        return "250 OK"


@dataclass
class Hooks:
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def receivers() -> Iterator[tuple[Hooks, Inbox, str, int]]:
    import asyncio
    import threading

    hooks, inbox = Hooks(), Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def receive(request: web.Request) -> web.Response:
        hooks.deliveries.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/hook", receive)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, runner.addresses[0][1]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield hooks, inbox, f"http://127.0.0.1:{port}/hook", smtp.port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        smtp.stop()


def _wait(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_thresholds_warn_then_stop_once_each_by_webhook_and_email(
    gp: Gp, home: Path, receivers: tuple[Hooks, Inbox, str, int]
) -> None:
    hooks, inbox, hook_url, smtp_port = receivers
    with fake_upstream_in_thread() as fake:
        prepare_home(gp, fake.url)
        config = home / "config.toml"
        text = config.read_text().replace('webhook_url = ""', f'webhook_url = "{hook_url}"')
        text = text.replace('smtp_host = ""', 'smtp_host = "127.0.0.1"').replace(
            "smtp_port = 25", f"smtp_port = {smtp_port}"
        )
        config.write_text(text)
        assert gp("alert", "add", "acme-research-dev", "0.000001/day:warn", "0.0001/day:stop").code == 0
        key = gp("key", "issue", "acme-research-dev").out.strip()
        gateway = GatewayThread()
        try:
            client = anthropic.Anthropic(base_url=gateway.url + "/anthropic", api_key=key, max_retries=0)
            client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "a"}])
            _wait(lambda: len(hooks.deliveries) >= 1 and len(inbox.mails) >= 1)
            client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "b"}])
            _wait(lambda: len(hooks.deliveries) >= 2)
            with pytest.raises(anthropic.PermissionDeniedError) as info:  # stopped: the agent is suspended
                client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "c"}])
            assert info.value.response.headers["x-gatepass-denied"] == "agent_suspended"
            time.sleep(0.3)  # nothing more may arrive: each threshold fires once per period
        finally:
            gateway.stop()
    secret = Secret((home / "webhook.secret").read_text().strip())
    kinds = []
    for headers, body in hooks.deliveries:
        assert verify_signature(
            secret,
            headers[SIGNATURE_HEADER] if SIGNATURE_HEADER in headers else headers[SIGNATURE_HEADER.title()],
            body,
        )
        kinds.append(json.loads(body)["action"])
    assert kinds == ["warn", "stop"]
    assert len(inbox.mails) == 2 and inbox.mails[0].rcpt_tos[0] == "me@example.com"
    assert b"acme-research-dev" in inbox.mails[1].content
    actions = [r["action"] for r in json.loads(gp("audit", "tail", "-n", "100", "--json").out)]
    assert actions.count("alert.fire") == 2 and actions.count("alert.notify") == 2
    assert json.loads(gp("agent", "list", "--json").out)[0]["status"] == "suspended"


def test_the_loop_breaker_refuses_repeats_and_alerts_once(setup: Setup) -> None:
    client = anthropic.Anthropic(base_url=setup.url + "/anthropic", api_key=setup.key, max_retries=0)
    same = [{"role": "user", "content": "again"}]
    statuses = []
    for _ in range(25):
        try:
            client.messages.create(model=HAIKU, max_tokens=8, messages=same)  # type: ignore[arg-type]
            statuses.append(200)
        except anthropic.RateLimitError as exc:
            assert exc.response.headers["x-gatepass-denied"] == "loop_detected"
            assert exc.response.headers["x-should-retry"] == "false"
            statuses.append(429)
    assert statuses == [200] * 20 + [429] * 5
    client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "something else"}])
    _wait(lambda: len(setup.audit("alert.loop")) == 1)
    assert len(setup.audit("alert.loop")) == 1
