"""Bad input and broken upstreams: clear errors, nothing unaudited, and the gateway keeps serving."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatepass.testing.fake_upstream import fake_upstream_in_thread
from tests.conftest import Gp
from tests.dataplane.harness import GatewayThread, Setup, http, prepare_home

HAIKU = "claude-haiku-4-5-20251001"


def _post(setup: Setup, path: str, body: bytes, **headers: str) -> tuple[int, dict[str, str], bytes]:
    reply = http(
        "POST",
        setup.url + path,
        headers={"x-api-key": setup.key, "content-type": "application/json", **headers},
        body=body,
    )
    return reply.status, reply.headers, reply.body


@pytest.fixture
def tight(gp: Gp, home: Path) -> Iterator[Setup]:
    """A gateway with a small body limit and a short upstream timeout."""
    with fake_upstream_in_thread() as fake:
        secrets = prepare_home(gp, fake.url)
        config = home / "config.toml"
        text = config.read_text().replace("max_body_bytes = 33554432", "max_body_bytes = 4096")
        config.write_text(text.replace("read_timeout = 600.0", "read_timeout = 0.5"))
        s = Setup(gp=gp, home=home, fake=fake, secrets=secrets)
        s.key = s.issue()
        s.gateway = GatewayThread()
        try:
            yield s
        finally:
            s.gateway.stop()


def test_malformed_requests_get_provider_shaped_400s(setup: Setup) -> None:
    cases = [
        (b"{not json", "anthropic"),
        (b"[1, 2]", "anthropic"),
        (json.dumps({"model": HAIKU, "max_tokens": -5, "messages": []}).encode(), "anthropic"),
        (json.dumps({"model": 42, "max_tokens": 5, "messages": []}).encode(), "anthropic"),
        (json.dumps({"model": HAIKU, "max_tokens": 10_000_000, "messages": []}).encode(), "anthropic"),
        (b"{not json", "openai"),
    ]
    for body, provider in cases:
        path = "/anthropic/v1/messages" if provider == "anthropic" else "/openai/v1/chat/completions"
        status, headers, raw = _post(setup, path, body)
        assert status == 400, (body, raw)
        error = json.loads(raw)["error"]
        assert error["message"] and headers["x-gatepass-denied"] and headers["x-should-retry"] == "false"
        if provider == "anthropic":
            assert json.loads(raw)["type"] == "error" and error["type"] == "invalid_request_error"
    assert setup.fake.requests == []
    records = setup.audit()
    assert len(records) == len(cases) and all(r["decision"] == "deny" for r in records)
    assert {r["reason"] for r in records} >= {"max_tokens_too_large"}


def test_openai_request_without_max_tokens_reserves_the_model_cap(setup: Setup) -> None:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _, _ = _post(setup, "/openai/v1/chat/completions", body)
    assert status == 200
    assert setup.audit()[0]["meta"]["cost_micros"] > 0


def test_body_over_the_limit_is_refused_at_once(tight: Setup) -> None:
    status, _headers, raw = _post(tight, "/anthropic/v1/messages", b"x" * 8000)
    assert status == 413
    assert "4096" in json.loads(raw)["error"]["message"]
    assert tight.fake.requests == []
    ok = _post(
        tight,
        "/anthropic/v1/messages",
        json.dumps({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}).encode(),
    )
    assert ok[0] == 200  # the gateway keeps serving


def test_slow_upstream_times_out_and_is_charged_the_worst_case(tight: Setup) -> None:
    tight.fake.set_header_delay(2.0)
    body = json.dumps({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}).encode()
    status, headers, _raw = _post(tight, "/anthropic/v1/messages", body)
    assert status == 504 and headers["x-gatepass-denied"] == "upstream_timeout"
    assert "x-should-retry" not in headers  # waiting may fix it: the SDKs may retry
    tight.fake.reset_behaviour()
    assert _post(tight, "/anthropic/v1/messages", body)[0] == 200
    first, second = tight.audit()
    assert first["reason"] == "upstream_timeout" and first["meta"]["cost_micros"] > second["meta"]["cost_micros"]
    day = next(p for p in tight.spend()["agents"][0]["periods"] if p["period"] == "day")
    assert day["reserved_micros"] == 0


def test_unreachable_upstream_costs_nothing(gp: Gp, home: Path) -> None:
    with fake_upstream_in_thread() as fake:
        prepare_home(gp, fake.url)
    key = gp("key", "issue", "acme-research-dev").out.strip()
    gateway = GatewayThread()  # the fake is gone: connections are refused
    try:
        body = json.dumps({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}).encode()
        reply = http("POST", gateway.url + "/anthropic/v1/messages", headers={"x-api-key": key}, body=body)
        assert reply.status == 502 and reply.headers["x-gatepass-denied"] == "upstream_unavailable"
    finally:
        gateway.stop()
    (record,) = json.loads(gp("audit", "tail", "--action", "request", "--json").out)
    assert record["meta"]["cost_micros"] == 0


def test_misconfigured_upstream_is_refused_without_a_credential(setup: Setup) -> None:
    assert setup.gp("secret", "rm", "anthropic-main").code == 0
    body = json.dumps({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}).encode()
    status, headers, raw = _post(setup, "/anthropic/v1/messages", body)
    assert status == 503 and headers["x-gatepass-denied"] == "upstream_misconfigured"
    assert "gatepass secret add" in json.loads(raw)["error"]["message"]
    assert setup.fake.requests == []


def test_agent_headers_cannot_replace_or_read_the_credential(setup: Setup) -> None:
    body = json.dumps({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}).encode()
    reply = http(
        "POST",
        setup.url + "/anthropic/v1/messages",
        body=body,
        headers={
            "authorization": f"Bearer {setup.key}",
            "x-api-key": setup.key,
            "connection": "x-api-key, keep-alive",
            "proxy-authorization": "Basic Zm9vOmJhcg==",
            "cookie": "session=1",
            "te": "trailers",
        },
    )
    assert reply.status == 200, reply.body
    (seen,) = setup.fake.requests
    assert seen.headers["x-api-key"] == setup.secrets["anthropic"]
    lowered = {k.lower(): v for k, v in seen.headers.items()}
    assert "authorization" not in lowered and "proxy-authorization" not in lowered and "cookie" not in lowered
    assert setup.secrets["anthropic"].encode() not in reply.body
    assert all(setup.secrets["anthropic"] not in v for v in reply.headers.values())


def test_a_request_whose_audit_record_cannot_be_written_is_refused(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    body = json.dumps({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}).encode()
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", disk_full)  # the audit log writes with os.write; sockets do not
        status, headers, raw = _post(setup, "/anthropic/v1/messages", body)
    assert status == 500 and headers["x-gatepass-denied"] == "audit_unavailable"  # fail closed
    assert b"Hello" not in raw  # the upstream's answer is not released
    assert _post(setup, "/anthropic/v1/messages", body)[0] == 200
