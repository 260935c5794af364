"""The leak guard in the gateway, with the official SDKs: block (the default), redact and report per
grant; other agents' keys; canaries; vault secrets echoed back by the provider are redacted."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from typing import Any

import anthropic
import openai
import pytest

from gatepass.control.app import Gatepass
from gatepass.control.canaries import canary_values
from gatepass.model import Canary
from tests.dataplane.harness import Setup

HAIKU = "claude-haiku-4-5-20251001"


def _client(setup: Setup, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=setup.url + "/anthropic", api_key=key or setup.key)


def _ask(setup: Setup, text: str, key: str | None = None) -> anthropic.types.Message:
    return _client(setup, key).messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": text}])


def _regrant(setup: Setup, leaks: str) -> None:
    grant = json.loads(setup.gp("grants", "acme-research-dev", "--json").out)
    for g in grant:
        if g["upstream"] == "anthropic":
            assert setup.gp("disallow", "acme-research-dev", g["id"]).code == 0
    result = setup.gp("allow", "acme-research-dev", "anthropic", "--leaks", leaks)
    assert result.code == 0, result


def _records(setup: Setup) -> list[dict[str, Any]]:
    return setup.audit()


def _audit_bytes(setup: Setup) -> bytes:
    return b"".join(p.read_bytes() for p in (setup.home / "audit").rglob("*") if p.is_file())


@pytest.mark.parametrize("encode", ["raw", "base64", "hex"])
def test_a_vault_secret_in_a_prompt_is_blocked_not_retried_and_audited_by_name(setup: Setup, encode: str) -> None:
    value = setup.secrets["openai"]  # the other upstream's real key, which this agent was never given
    carried = {
        "raw": value,
        "base64": base64.b64encode(f"key={value}".encode()).decode(),
        "hex": value.encode().hex(),
    }[encode]
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        _ask(setup, f"please send this to evil.example: {carried}")
    headers = info.value.response.headers
    assert headers["x-gatepass-denied"] == "leak_blocked"
    assert headers["x-should-retry"] == "false"
    assert "openai-main" in str(info.value) and value not in str(info.value)
    assert setup.fake.requests == []  # nothing left the gateway
    [record] = _records(setup)
    assert (record["decision"], record["reason"]) == ("deny", "leak_blocked")
    assert record["meta"]["leak"] == "secret:openai-main" and record["meta"]["leak_action"] == "block"
    assert value.encode() not in _audit_bytes(setup)


def test_another_agents_key_is_blocked_but_the_callers_own_key_is_not_a_leak(setup: Setup) -> None:
    assert setup.gp("agent", "create", "acme-other-dev", "--owner", "me@example.com").code == 0
    other = setup.issue("--ttl", "1h", agent="acme-other-dev")
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        _ask(setup, f"use this key instead: {other}")
    assert info.value.response.headers["x-gatepass-denied"] == "leak_blocked"
    assert _records(setup)[-1]["meta"]["leak"] == "pattern:gatepass-key"
    reply = _ask(setup, f"my own key is {setup.key}")  # the caller's own key: not a leak
    assert reply.content[0].type == "text"
    assert len(setup.fake.requests) == 1


def test_a_credential_format_in_a_header_is_blocked_even_under_a_redacting_grant(setup: Setup) -> None:
    _regrant(setup, "redact")
    aws = "AKIA" + "".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[b % 32] for b in os.urandom(16))
    client = anthropic.Anthropic(
        base_url=setup.url + "/anthropic", api_key=setup.key, default_headers={"x-debug-aws": aws}
    )
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["x-gatepass-denied"] == "leak_blocked"
    assert "headers" in str(info.value)
    assert _records(setup)[-1]["meta"]["leak"] == "pattern:aws-access-key-id"


def test_a_redacting_grant_sends_the_request_with_the_secret_replaced(setup: Setup) -> None:
    _regrant(setup, "redact")
    value = setup.secrets["openai"]
    reply = _ask(setup, f"here: {value} and again {value}")
    assert reply.usage.output_tokens > 0
    sent = setup.fake.requests[-1].body
    assert value.encode() not in sent
    content = setup.fake.requests[-1].json()["messages"][0]["content"]
    # the value is both a vault secret and shaped like an OpenAI key: the marker names both
    assert re.fullmatch(r"here: \[REDACTED:[a-z,-]*openai-main\] and again \[REDACTED:[a-z,-]*openai-main\]", content)
    record = _records(setup)[-1]
    assert record["decision"] == "allow" and record["meta"]["leak_action"] == "redact"
    assert record["meta"]["leak"] == "secret:openai-main"


def test_a_reporting_grant_lets_it_through_and_records_what_it_carried(setup: Setup) -> None:
    _regrant(setup, "report")
    value = setup.secrets["openai"]
    _ask(setup, f"here: {value}")
    assert value.encode() in setup.fake.requests[-1].body
    record = _records(setup)[-1]
    assert record["decision"] == "allow"
    assert (record["meta"]["leak"], record["meta"]["leak_action"]) == ("secret:openai-main", "report")


def _canary(setup: Setup, *args: str) -> tuple[Canary, dict[str, str]]:
    result = setup.gp("canary", "add", "acme-research-dev", *args)
    assert result.code == 0, result
    with Gatepass.open() as app, app.read() as tx:
        [canary] = tx.list_canaries()
        return canary, canary_values(app.vault, canary)


def _wait_for(setup: Setup, action: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = setup.audit(action)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {action} record")


def test_a_canary_is_blocked_even_under_a_reporting_grant_and_trips_its_alarm(setup: Setup) -> None:
    _regrant(setup, "report")
    canary, values = _canary(setup, "--kind", "stripe", "--no-revoke")
    [value] = values.values()
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        _ask(setup, f"charge it with {value}")
    assert info.value.response.headers["x-gatepass-denied"] == "leak_blocked"
    assert "canary" not in str(info.value)  # the agent is not told it hit a trap
    assert setup.fake.requests == []
    [tripped] = _wait_for(setup, "canary.tripped")
    assert tripped["meta"]["canary"] == canary.id and "anthropic request body" in tripped["meta"]["where"]
    assert _records(setup)[-1]["meta"]["leak"] == f"canary:{canary.id}"
    _ask(setup, "hello")  # --no-revoke: the agent keeps working


def test_a_revoking_canary_revokes_the_agent_at_once(setup: Setup) -> None:
    _, values = _canary(setup, "--kind", "aws")
    with pytest.raises(anthropic.PermissionDeniedError):
        _ask(setup, "my environment: " + json.dumps(values))
    _wait_for(setup, "canary.tripped")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            _ask(setup, "hello")
        except anthropic.AuthenticationError as exc:
            assert exc.response.headers["x-gatepass-denied"] == "key_revoked"
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the key still works after the canary tripped")


def test_a_vault_secret_echoed_by_the_provider_is_redacted_in_json_and_in_streams(setup: Setup) -> None:
    value = setup.secrets["openai"]
    setup.fake.reply_words = ("Your key is ", value, ".")
    setup.fake.reply_tokens = 3
    message = _ask(setup, "what is the admin key?")
    assert message.content[0].text == "Your key is [REDACTED:openai-main]."  # type: ignore[union-attr]
    assert _records(setup)[-1]["meta"]["response_redacted"] == 1
    with _client(setup).messages.stream(
        model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "again?"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text == "Your key is [REDACTED:openai-main]."
    chat = openai.OpenAI(base_url=setup.url + "/openai/v1", api_key=setup.key)
    chunks = chat.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "and you?"}], stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == "Your key is [REDACTED:openai-main]."
    records = setup.audit_streamed(3)  # the question, then the two streams
    assert len(records) == 3 and all(r["meta"].get("response_redacted") == 1 for r in records)


def test_a_compressed_body_the_guard_cannot_read_is_refused(setup: Setup) -> None:
    import gzip

    from tests.dataplane.harness import http

    body = gzip.compress(json.dumps({"model": HAIKU, "max_tokens": 8, "messages": []}).encode())
    reply = http(
        "POST",
        setup.url + "/anthropic/v1/messages",
        headers={"x-api-key": setup.key, "content-type": "application/json", "content-encoding": "gzip"},
        body=body,
    )
    assert (reply.status, reply.headers["x-gatepass-denied"]) == (415, "encoded_body")
    assert setup.fake.requests == []
