"""The gateway's leak guard: what it looks for follows the runtime state; responses are redacted."""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from gatepass.control.canaries import generate_decoys
from gatepass.dataplane.leaks import Leak, LeakGuard, describe
from gatepass.dataplane.state import RuntimeState
from gatepass.model import Canary
from gatepass.sensitive import Secret
from gatepass.vault import MasterKey, Vault
from tests.conftest import fake_secret
from tests.factories import make_agent, make_live_key


@pytest.fixture
def vault() -> Vault:
    return Vault(MasterKey.generate(), "inst_test", secrets.token_bytes(32))


def _state(vault: Vault, values: dict[str, str], canaries: dict[str, tuple[Canary, ...]] | None = None) -> RuntimeState:
    state = RuntimeState(vault)
    state.leak_version = 1
    state.secret_values = {k: Secret(v) for k, v in values.items()}
    state.canaries = canaries or {}
    return state


def _canary(vault: Vault, kind: str) -> tuple[Canary, dict[str, str]]:
    values = generate_decoys(kind)
    cid = "cn_" + secrets.token_hex(4)
    sealed = vault.seal_blob(f"canary:{cid}", json.dumps(values).encode())
    return Canary(cid, "ag_1", kind, sealed, "fp"), values


def test_requests_are_checked_in_url_headers_and_body_and_the_callers_own_key_is_not_a_leak(vault: Vault) -> None:
    value = fake_secret("FAKE-anthropic-")
    guard = LeakGuard(_state(vault, {"anthropic-main": value}), vault)
    assert guard.check(b"/v1/messages", [(b"x-trace", b"1")], b'{"prompt":"hello"}', None) is None
    in_url = guard.check(b"/v1/messages?k=" + value.encode(), [], b"", None)
    assert in_url is not None and (in_url.where, in_url.finding.name) == ("url", "anthropic-main")
    in_header = guard.check(b"/v1/messages", [(b"x-note", value.encode())], b"", None)
    assert in_header is not None and in_header.where == "headers"
    encoded = base64.b64encode(b"env dump: " + value.encode())
    in_body = guard.check(b"/v1/messages", [], b'{"content":"' + encoded + b'"}', None)
    assert in_body is not None and (in_body.where, in_body.finding.encoding) == ("body", "base64")
    assert value not in describe(in_body) and "anthropic-main" in describe(in_body)
    assert value not in repr(guard) and value not in repr(in_body)


def test_what_is_looked_for_follows_the_state_version(vault: Vault) -> None:
    old, new = fake_secret("FAKE-old-"), fake_secret("FAKE-new-")
    state = _state(vault, {"s": old})
    guard = LeakGuard(state, vault)
    assert guard.check(b"/", [], old.encode(), None) is not None
    state.secret_values = {"s": Secret(new)}  # rotated, but the version has not moved yet: still the old scanner
    assert guard.check(b"/", [], new.encode(), None) is None
    state.leak_version += 1
    assert guard.check(b"/", [], new.encode(), None) is not None
    assert guard.check(b"/", [], old.encode(), None) is None


def test_canaries_are_found_with_their_record_and_described_like_any_credential(vault: Vault) -> None:
    canary, values = _canary(vault, "database")
    guard = LeakGuard(_state(vault, {}, {"ag_1": (canary,)}), vault)
    password = values["DATABASE_URL"].split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    found = guard.check(b"/", [], b"the db password is " + password.encode(), None)
    assert found is not None and found.canary == canary and found.finding.kind == "canary"
    assert "canary" not in describe(found) and canary.id not in describe(found)
    aws, aws_values = _canary(vault, "aws")
    guard = LeakGuard(_state(vault, {}, {"ag_1": (aws,)}), vault)
    leak = guard.check(b"/", [], aws_values["AWS_SECRET_ACCESS_KEY"].encode(), None)
    assert isinstance(leak, Leak) and leak.canary == aws


def test_redact_replaces_every_finding_in_the_body(vault: Vault) -> None:
    value = fake_secret("FAKE-openai-")
    guard = LeakGuard(_state(vault, {"openai-main": value}), vault)
    body = json.dumps({"a": value, "b": "x" + value}).encode()
    clean, leaks = guard.redact(body, None)
    assert value.encode() not in clean and clean.count(b"[REDACTED:openai-main]") == 2
    assert [leak.finding.name for leak in leaks] == ["openai-main", "openai-main"]
    assert json.loads(clean)["a"] == "[REDACTED:openai-main]"


@pytest.mark.parametrize("event_stream", [True, False])
def test_streamed_responses_have_echoed_secrets_redacted_at_every_split(vault: Vault, event_stream: bool) -> None:
    value = fake_secret("FAKE-gh-")
    guard = LeakGuard(_state(vault, {"gh-main": value}), vault)
    stream = (
        b'event: content_block_delta\ndata: {"text":"ok"}\n\n'
        b'event: content_block_delta\ndata: {"text":"' + value.encode() + b'"}\n\n'
        b"event: message_stop\ndata: {}\n\n"
    )
    for cut in range(1, len(stream), 7):
        flt = guard.response_stream(event_stream)
        out = flt.feed(stream[:cut]) + flt.feed(stream[cut:]) + flt.flush()
        assert value.encode() not in out
        assert out == stream.replace(value.encode(), b"[REDACTED:gh-main]")
        assert flt.redacted == 1
    body, count = guard.response_body(b'{"echo":"' + value.encode() + b'"}')
    assert count == 1 and body == b'{"echo":"[REDACTED:gh-main]"}'


def test_complete_events_go_out_at_once(vault: Vault) -> None:
    guard = LeakGuard(_state(vault, {"k": fake_secret("FAKE-")}), vault)
    flt = guard.response_stream(True)
    assert flt.feed(b"data: 1\n\ndata: 2") == b"data: 1\n\n"  # the partial second event waits for its end
    assert flt.feed(b"\n\n") == b"data: 2\n\n"
    assert flt.flush() == b""


def test_the_egress_hook_blocks_findings_with_their_label(vault: Vault) -> None:
    value = fake_secret("FAKE-")
    guard = LeakGuard(_state(vault, {"s": value}), vault)
    scan = guard.egress_scan(None)
    agent, key = make_agent(), make_live_key()
    head = b"POST /x HTTP/1.1\r\nHost: h\r\n"
    assert scan(agent, key, head + b"\r\nhello") is None
    found = scan(agent, key, head + b"\r\n" + value.encode())
    assert found is not None and found[0] == "leak_blocked" and found[2] == "secret:s"
    assert value not in found[1]
