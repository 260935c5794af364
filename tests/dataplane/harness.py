"""A running gateway for tests: ``gatepass serve``'s service in a thread with its own event loop,
in front of the fake upstream, with a home set up through the CLI."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gatepass.control.app import Gatepass
from gatepass.control.serve import GatewayService
from gatepass.dataplane.http.server import new_event_loop
from gatepass.testing.fake_upstream import FakeUpstream
from tests.conftest import Gp, fake_secret

T = TypeVar("T")


class GatewayThread:
    """GatewayService running on its own loop in a daemon thread."""

    def __init__(self, **options: Any) -> None:
        self.loop = new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gateway", daemon=True)
        self.thread.start()
        self.app = Gatepass.open(actor="cli:test")
        self.service = GatewayService(self.app, listen="127.0.0.1:0", admin_listen="127.0.0.1:0", **options)
        self.run(self.service.start())

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    @property
    def url(self) -> str:
        return self.service.data_url

    def stop(self) -> None:
        try:
            self.run(self.service.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()
            self.app.close()


@dataclass
class Setup:
    """What a gateway test works with."""

    gp: Gp
    home: Path
    fake: FakeUpstream
    secrets: dict[str, str]
    key: str = ""
    gateway: GatewayThread | None = None
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    def issue(self, *args: str, agent: str = "acme-research-dev") -> str:
        result = self.gp("key", "issue", agent, *args)
        assert result.code == 0, result
        return result.out.strip()

    def audit(self, action: str = "request", n: int = 1000) -> list[dict[str, Any]]:
        result = self.gp("audit", "tail", "-n", str(n), "--action", action, "--json")
        assert result.code == 0, result
        return json.loads(result.out)  # type: ignore[no-any-return]

    def audit_streamed(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The request records once there are ``count`` of them. A streaming SDK may stop reading
        at its last event (OpenAI's stops at ``[DONE]`` and closes) and so return before the end of
        the body, which is what the gateway holds back until the record is written; the record
        then lands a moment after the SDK returned."""
        deadline = time.monotonic() + timeout
        while len(records := self.audit()) < count:
            assert time.monotonic() < deadline, f"{len(records)} request records after {timeout} s, not {count}"
            time.sleep(0.02)
        return records

    def spend(self) -> dict[str, Any]:
        result = self.gp("spend", "--json")
        assert result.code == 0, result
        return json.loads(result.out)  # type: ignore[no-any-return]


def prepare_home(gp: Gp, fake_url: str, *, budget: str | None = "50/month") -> dict[str, str]:
    """Init a home with anthropic and openai upstreams on the fake, an agent, grants; returns the secrets."""
    assert gp("init").code == 0
    values = {"anthropic": fake_secret("sk-ant-fake-"), "openai": fake_secret("sk-fake-")}
    for name in ("anthropic", "openai"):
        assert gp("upstream", "add", name, "--type", name, "--base-url", fake_url, "--secret", f"{name}-main").code == 0
        assert gp("secret", "add", f"{name}-main", "--upstream", name, input=values[name]).code == 0
    args = ["agent", "create", "acme-research-dev", "--owner", "me@example.com"]
    if budget:
        args += ["--budget", budget]
    assert gp(*args).code == 0
    for name in ("anthropic", "openai"):
        assert gp("allow", "acme-research-dev", name).code == 0
    return values


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None, timeout: float = 30
) -> Reply:
    """One plain HTTP/1.1 request (http.client), for what the SDKs would not send."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()
