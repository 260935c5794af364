"""Plain HTTP upstreams (the github preset and generic http): method and path scoping, the credential
only for the upstream's own host, and redirects handed back, never followed with the credential."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import Gp, fake_secret
from tests.dataplane.harness import GatewayThread, http


@dataclass
class Recorder:
    """A tiny HTTP API on loopback that records what reached it; ``/moved`` redirects elsewhere."""

    redirect_to: str = ""
    echo: str = ""  # a value /echo answers with (the upstream handing back its own token)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path_qs, {k.lower(): v for k, v in request.headers.items()}))
        if request.path.endswith("/moved") and self.redirect_to:
            raise web.HTTPFound(self.redirect_to + "/stolen")
        if request.path.endswith("/echo"):
            return web.json_response({"token": self.echo, "padding": "x" * 100_000})
        return web.json_response({"path": request.path, "method": request.method})


@pytest.fixture
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    """Two recorders: the upstream, and another host a redirect points at."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    recorders = (Recorder(), Recorder())
    runners: list[web.AppRunner] = []

    async def start(rec: Recorder) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", rec.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        rec.url = f"http://127.0.0.1:{port}"

    for rec in recorders:
        asyncio.run_coroutine_threadsafe(start(rec), loop).result(10)
    recorders[0].redirect_to = recorders[1].url
    try:
        yield recorders
    finally:
        for runner in runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def github(gp: Gp, home: Path, servers: tuple[Recorder, Recorder]) -> Iterator[tuple[GatewayThread, str, str]]:
    """A gateway with a github upstream on the recorder, an agent allowed GET on one repo only."""
    upstream, _ = servers
    token = fake_secret("FAKE-gh-")
    assert gp("init").code == 0
    assert gp("upstream", "add", "gh", "--type", "github", "--base-url", upstream.url, "--secret", "gh-main").code == 0
    assert gp("secret", "add", "gh-main", "--upstream", "gh", input=token).code == 0
    assert gp("agent", "create", "acme-docs-dev", "--owner", "me@example.com").code == 0
    result = gp("allow", "acme-docs-dev", "gh", "--methods", "GET", "--paths", "/repos/acme/docs/**")
    assert result.code == 0, result
    key = gp("key", "issue", "acme-docs-dev", "--ttl", "1h").out.strip()
    gateway = GatewayThread()
    try:
        yield gateway, key, token
    finally:
        gateway.stop()


def test_only_the_granted_methods_and_paths_reach_the_upstream_with_the_credential(
    github: tuple[GatewayThread, str, str], servers: tuple[Recorder, Recorder]
) -> None:
    gateway, key, token = github
    upstream, _ = servers
    auth = {"authorization": f"Bearer {key}"}
    ok = http("GET", gateway.url + "/gh/repos/acme/docs/contents/README.md?ref=main", headers=auth)
    assert ok.status == 200, ok
    assert ok.json() == {"path": "/repos/acme/docs/contents/README.md", "method": "GET"}
    method, target, headers = upstream.seen[-1]
    assert (method, target) == ("GET", "/repos/acme/docs/contents/README.md?ref=main")
    assert headers["authorization"] == f"Bearer {token}"  # the real token, and never the gatepass key
    assert key not in str(headers)

    refused = [
        ("POST", "/gh/repos/acme/docs/issues"),  # method not granted
        ("DELETE", "/gh/repos/acme/docs"),
        ("GET", "/gh/repos/acme/other/contents/README.md"),  # path outside the glob
        ("GET", "/gh/repos/acme/docs/../other/contents"),  # traversal out of the glob
        ("GET", "/gh/repos/acme/docs%2F..%2Fother"),  # encoded traversal
        ("GET", "/gh/user"),
    ]
    for method, path in refused:
        reply = http(method, gateway.url + path, headers=auth, body=b"{}" if method == "POST" else None)
        assert reply.status in (400, 403), (method, path, reply)
        assert reply.headers["x-gatepass-denied"], (method, path)
    assert len(upstream.seen) == 1  # none of the refused requests reached the upstream


def test_a_redirect_to_another_host_is_handed_back_and_not_followed_with_the_credential(
    github: tuple[GatewayThread, str, str], servers: tuple[Recorder, Recorder]
) -> None:
    gateway, key, _token = github
    upstream, elsewhere = servers
    reply = http("GET", gateway.url + "/gh/repos/acme/docs/moved", headers={"authorization": f"Bearer {key}"})
    assert reply.status == 302
    assert reply.headers["location"] == elsewhere.url + "/stolen"
    assert len(upstream.seen) == 1
    assert elsewhere.seen == []  # the gateway did not follow it, so the token went nowhere else


def test_an_agent_supplied_authorization_cannot_replace_or_reach_past_the_credential(
    github: tuple[GatewayThread, str, str], servers: tuple[Recorder, Recorder]
) -> None:
    gateway, key, token = github
    upstream, _ = servers
    headers = {"x-api-key": key, "proxy-authorization": "Basic Zm9vOmJhcg==", "x-github-token": "mine"}
    reply = http("GET", gateway.url + "/gh/repos/acme/docs/readme", headers=headers)
    assert reply.status == 200, reply
    seen = upstream.seen[-1][2]
    assert seen["authorization"] == f"Bearer {token}"
    assert "x-api-key" not in seen and "proxy-authorization" not in seen


def test_a_token_the_upstream_hands_back_is_redacted_before_the_agent_sees_it(
    github: tuple[GatewayThread, str, str], servers: tuple[Recorder, Recorder]
) -> None:
    gateway, key, token = github
    upstream, _ = servers
    upstream.echo = token
    reply = http("GET", gateway.url + "/gh/repos/acme/docs/echo", headers={"authorization": f"Bearer {key}"})
    assert reply.status == 200, reply
    assert token.encode() not in reply.body
    assert reply.json()["token"] == "[REDACTED:gh-main]"
