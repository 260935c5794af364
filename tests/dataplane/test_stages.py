"""The admission stages one by one, on a hand-built RuntimeState (no store, no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gatepass.dataplane import stages
from gatepass.dataplane.exchange import Exchange
from gatepass.dataplane.http.messages import IncomingRequest
from gatepass.dataplane.state import RuntimeState
from gatepass.keyformat import generate_key
from gatepass.model import Grant
from gatepass.vault import MasterKey, Vault
from tests.factories import make_agent, make_live_key, make_upstream_entry

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
KEY = generate_key().reveal()
DIGEST = b"\x01" * 32


def _state() -> RuntimeState:
    state = RuntimeState(Vault(MasterKey.generate(), "inst_test", b"s" * 32))
    agent = make_agent()
    state.agents = {agent.id: agent}
    state.keys = {DIGEST: make_live_key()}
    state.grants = {"ag_1": (Grant("gr_1", "ag_1", "anthropic"),)}
    state.upstreams = {"anthropic": make_upstream_entry()}
    return state


def _exchange(target: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> Exchange:
    path, _, query = target.partition(b"?")
    default = [(b"x-api-key", KEY.encode())]
    request = IncomingRequest(
        "POST",
        target,
        path.decode(),
        query,
        default if headers is None else headers,
        b"{}",
        "127.0.0.1",
        5000,
        "1.1",
        True,
    )
    return Exchange(request=request, id="req_t", started=0.0, now=NOW)


@pytest.mark.parametrize(
    ("target", "code"),
    [
        (b"/anthropic/v1/%2e%2e/admin", "bad_path"),
        (b"/anthropic/v1/..%2Fadmin", "bad_path"),
        (b"/anthropic/v1/messages/../../x", "bad_path"),
        (b"/anthropic//v1/messages", "bad_path"),
        (b"/anthropic/v1\\messages", "bad_path"),
        (b"/nowhere/v1/messages", "unknown_upstream"),
    ],
)
def test_ambiguous_or_unknown_paths_are_refused(target: bytes, code: str) -> None:
    ex = _exchange(target)
    stages.route(ex, _state())
    assert ex.denial is not None and ex.denial.code == code


def test_route_splits_upstream_path_and_target() -> None:
    ex = _exchange(b"/anthropic/v1/messages?beta=true")
    stages.route(ex, _state())
    assert ex.denial is None
    assert (ex.upstream_name, ex.path, ex.target) == ("anthropic", "/v1/messages", b"/v1/messages?beta=true")
    assert ex.route is not None and ex.route.metered


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ([], "key_missing"),
        ([(b"x-api-key", b"sk-ant-not-a-gatepass-key")], "key_malformed"),
        ([(b"x-api-key", generate_key().reveal().encode())], "key_unknown"),
        (
            [(b"x-api-key", KEY.encode()), (b"authorization", b"Bearer " + generate_key().reveal().encode())],
            "key_malformed",
        ),
    ],
)
def test_authenticate(headers: list[tuple[bytes, bytes]], code: str) -> None:
    ex = _exchange(b"/anthropic/v1/messages", headers)
    stages.authenticate(
        ex, _state(), lambda text: DIGEST if text == KEY else (b"\x02" * 32 if text.startswith("gp_") else None)
    )
    assert ex.denial is not None and ex.denial.code == code and ex.denial.status == 401


def test_authenticate_accepts_either_header() -> None:
    for headers in ([(b"x-api-key", KEY.encode())], [(b"authorization", b"Bearer " + KEY.encode())]):
        ex = _exchange(b"/anthropic/v1/messages", headers)
        stages.authenticate(ex, _state(), lambda text: DIGEST if text == KEY else None)
        assert ex.denial is None and ex.key is not None and ex.agent is not None
        stages.route(ex, _state())
        assert KEY not in repr(ex) and "real" not in repr(ex.entry)  # reprs hide the key and the credential
