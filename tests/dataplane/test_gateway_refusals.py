"""Refusals: provider-shaped, with x-gatepass-denied, audited, and not retried by the SDKs."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import anthropic
import openai
import pytest

from tests.dataplane.harness import Setup, http

HAIKU = "claude-haiku-4-5-20251001"
MSG = [{"role": "user", "content": "hi"}]


def _client(setup: Setup, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=setup.url + "/anthropic", api_key=key)


def _denied(setup: Setup) -> list[tuple[str, int]]:
    return [(r["reason"], r["meta"]["status"]) for r in setup.audit() if r["decision"] == "deny"]


def test_revocation_takes_effect_on_the_next_request(setup: Setup) -> None:
    client = _client(setup, setup.key)
    client.messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    key_id = json.loads(setup.gp("key", "list", "--json").out)[0]["id"]
    assert setup.gp("key", "revoke", key_id).code == 0
    with pytest.raises(anthropic.AuthenticationError) as info:
        client.messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert info.value.response.headers["x-gatepass-denied"] == "key_revoked"
    assert info.value.response.headers["x-should-retry"] == "false"
    assert "revoked" in str(info.value)
    assert _denied(setup) == [("key_revoked", 401)]  # refused once: the SDK did not retry
    assert len(setup.fake.requests) == 1


def test_suspended_agent_and_kill_switch(setup: Setup) -> None:
    client = _client(setup, setup.key)
    assert setup.gp("agent", "suspend", "acme-research-dev").code == 0
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        client.messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert info.value.response.headers["x-gatepass-denied"] == "agent_suspended"
    assert setup.gp("agent", "resume", "acme-research-dev").code == 0
    client.messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert setup.gp("revoke", "acme-research-dev").code == 0
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model=HAIKU, max_tokens=8, messages=MSG)


def test_expired_single_use_and_unknown_keys(setup: Setup) -> None:
    short = setup.issue("--ttl", "1s")
    once = setup.issue("--uses", "1")
    _client(setup, once).messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    with pytest.raises(anthropic.AuthenticationError) as info:
        _client(setup, once).messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert info.value.response.headers["x-gatepass-denied"] == "key_used_up"
    time.sleep(1.1)
    with pytest.raises(anthropic.AuthenticationError) as info:
        _client(setup, short).messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert info.value.response.headers["x-gatepass-denied"] == "key_expired"
    with pytest.raises(anthropic.AuthenticationError) as info:
        _client(setup, "gp_notakey").messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert info.value.response.headers["x-gatepass-denied"] == "key_malformed"
    limited = [k for k in json.loads(setup.gp("key", "list", "--all", "--json").out) if k["max_uses"] == 1]
    assert [k["uses_left"] for k in limited] == [0]


def test_keys_that_ended_days_ago_leave_the_gateways_memory(setup: Setup) -> None:
    """A revoked key is refused as revoked for ``ended_keys_kept_days`` (7), then forgotten with its
    counter slot and refused as unknown; a key still usable is kept (the fixture's own key, with a
    TTL of an hour, is forgotten too: it will have expired)."""

    def key_ids() -> set[str]:
        return {k["id"] for k in json.loads(setup.gp("key", "list", "--all", "--json").out)}

    kept = setup.issue("--ttl", "30d")
    before = key_ids()
    revoked = setup.issue("--ttl", "30d")
    (revoked_id,) = key_ids() - before
    for key in (revoked, kept):
        _client(setup, key).messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert setup.gp("key", "revoke", revoked_id).code == 0
    assert setup.gateway is not None
    service = setup.gateway.service

    async def forget_after(days: float) -> tuple[int, int, int]:
        slots = len(service.counters)
        gone = service.forget_ended_keys(datetime.now(UTC) + timedelta(days=days))
        return gone, slots, len(service.counters)

    assert setup.gateway.run(forget_after(6.9)) == (0, 3, 3)  # the agent and both keys
    with pytest.raises(anthropic.AuthenticationError) as info:
        _client(setup, revoked).messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert info.value.response.headers["x-gatepass-denied"] == "key_revoked"
    assert setup.gateway.run(forget_after(7.1)) == (2, 3, 2)
    assert revoked_id not in {k.id for k in service.state.keys.values()}
    with pytest.raises(anthropic.AuthenticationError) as info:
        _client(setup, revoked).messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert info.value.response.headers["x-gatepass-denied"] == "key_unknown"
    _client(setup, kept).messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert revoked_id in key_ids()  # the store keeps it


def test_policy_refusals_name_their_reason(setup: Setup) -> None:
    for grant in json.loads(setup.gp("grants", "acme-research-dev", "--json").out):
        assert setup.gp("disallow", "acme-research-dev", grant["id"]).code == 0
    assert setup.gp("allow", "acme-research-dev", "anthropic", "--models", "claude-haiku-*").code == 0
    client = _client(setup, setup.key)
    client.messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        client.messages.create(model="claude-opus-5", max_tokens=8, messages=MSG)
    assert info.value.response.headers["x-gatepass-denied"] == "model_not_allowed"
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        client.post("/v1/organizations/usage", cast_to=object, body={})
    assert info.value.response.headers["x-gatepass-denied"] == "route_not_allowed"
    oa = openai.OpenAI(base_url=setup.url + "/openai/v1", api_key=setup.key)
    with pytest.raises(openai.PermissionDeniedError) as oinfo:
        oa.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # type: ignore[arg-type]
    assert oinfo.value.response.headers["x-gatepass-denied"] == "no_grant"
    assert len(setup.fake.requests) == 1


def test_unpriced_model_is_refused_never_free(setup: Setup) -> None:
    client = _client(setup, setup.key)
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        client.messages.create(model="claude-imaginary-9", max_tokens=8, messages=MSG)
    assert info.value.response.headers["x-gatepass-denied"] == "model_unpriced"
    assert "no price" in str(info.value)
    assert setup.fake.requests == []


def test_source_address_binding(setup: Setup) -> None:
    elsewhere = setup.issue("--cidr", "10.0.0.0/8")
    here = setup.issue("--cidr", "127.0.0.1")
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        _client(setup, elsewhere).messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    assert info.value.response.headers["x-gatepass-denied"] == "source_not_allowed"
    _client(setup, here).messages.create(model=HAIKU, max_tokens=8, messages=MSG)


def test_rate_limits_answer_429_with_retry_after(setup: Setup) -> None:
    limited = setup.issue("--rpm", "2")
    client = _client(setup, limited).with_options(max_retries=0)
    for _ in range(2):
        client.messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=HAIKU, max_tokens=8, messages=MSG)
    headers = info.value.response.headers
    assert headers["x-gatepass-denied"] == "rate_limited"
    assert int(headers["retry-after"]) >= 1 and "x-should-retry" not in headers


def test_every_response_carries_a_request_id(setup: Setup) -> None:
    body = json.dumps({"model": HAIKU, "max_tokens": 8, "messages": MSG}).encode()
    ok = http("POST", setup.url + "/anthropic/v1/messages", headers={"x-api-key": setup.key}, body=body)
    denied = http("GET", setup.url + "/nowhere/x", headers={"x-api-key": setup.key})
    assert ok.status == 200 and ok.headers["x-gatepass-request-id"].startswith("req_")
    assert denied.status == 404 and denied.headers["x-gatepass-denied"] == "unknown_upstream"
    assert denied.headers["x-gatepass-request-id"] == [r for r in setup.audit()][-1]["meta"]["request_id"]
