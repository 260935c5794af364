"""The proxy's pure checks, as tables: targets, credentials, the allowlist decision, headers."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import timedelta

import pytest

from gatepass.dataplane.egresscheck import (
    Target,
    authenticate,
    decide,
    forward_headers,
    parse_absolute_target,
    parse_connect_target,
    response_headers,
)
from gatepass.dataplane.exchange import Denial
from gatepass.dataplane.http import IncomingRequest
from gatepass.dataplane.state import RuntimeState
from gatepass.keyformat import generate_key, is_well_formed
from gatepass.model import AgentStatus, EgressRule, PolicyMode
from gatepass.netguard import parse_host
from tests.factories import NOW, make_agent, make_key


@pytest.mark.parametrize(
    ("target", "label"),
    [
        (b"api.example.com:443", "api.example.com:443"),
        (b"API.Example.com.:8443", "api.example.com:8443"),
        (b"[2001:db8::1]:443", "[2001:db8::1]:443"),
        (b"2130706433:443", "127.0.0.1:443"),
        (b"[::ffff:127.0.0.1]:443", "[::ffff:7f00:1]:443"),
    ],
)
def test_connect_targets(target: bytes, label: str) -> None:
    found = parse_connect_target(target)
    assert isinstance(found, Target) and found.label == label and found.path == b""


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (b"api.example.com", "CONNECT needs host:port"),
        (b"api.example.com:", "the port '' is not a number"),
        (b"api.example.com:0", "the port '0' is not a number from 1 to 65535"),
        (b"api.example.com:65536", "the port '65536'"),
        (b"api.example.com:+443", "the port '+443'"),
        (b"api.example.com:\xd9\xa4\xd9\xa4\xd9\xa3", "is not a number"),
        (b"user@api.example.com:443", "host:port only"),
        (b"user:pw@api.example.com:443", "host:port only"),
        (b"api.example.com:443/path", "host:port only"),
        (b"http://api.example.com:443", "host:port only"),
        (b"", "host:port only"),
        (b"[::1:443", "an IPv6 host goes in brackets"),
        (b"[::1]x:443", "is not host:port"),
        (b"b\xc3\xbccher.de:443", "internationalised name"),
        (b"ex_a$mple.com:443", "not a valid host name"),
    ],
)
def test_bad_connect_targets_are_400_bad_target(target: bytes, message: str) -> None:
    found = parse_connect_target(target)
    assert isinstance(found, Denial) and (found.status, found.code) == (400, "bad_target")
    assert message in found.message, found.message


@pytest.mark.parametrize(
    ("target", "host", "label", "path"),
    [
        (b"http://example.com/a/b?q=1", b"example.com", "example.com:80", b"/a/b?q=1"),
        (b"HTTP://Example.com:8080", b"example.com:8080", "example.com:8080", b"/"),
        (b"http://example.com?x", None, "example.com:80", b"/?x"),
        (b"http://example.com/p#frag", b"EXAMPLE.com:80", "example.com:80", b"/p"),
        (b"http://[2001:db8::1]:81/", b"[2001:db8::1]:81", "[2001:db8::1]:81", b"/"),
    ],
)
def test_absolute_targets(target: bytes, host: bytes | None, label: str, path: bytes) -> None:
    found = parse_absolute_target(target, host)
    assert isinstance(found, Target) and (found.label, found.path) == (label, path)


@pytest.mark.parametrize(
    ("target", "host", "code", "message"),
    [
        (b"https://example.com/", b"example.com", "use_connect", "set HTTPS_PROXY"),
        (b"ftp://example.com/", None, "bad_target", "only http:// URLs"),
        (b"example.com/x", None, "bad_target", "names a whole URL"),
        (b"http://", None, "bad_target", "names a whole URL"),
        (b"http://user:pw@example.com/", None, "bad_target", "user or password"),
        (b"http://example.com:0/", None, "bad_target", "from 1 to 65535"),
        (b"http://example.com/", b"other.example.com", "host_mismatch", "does not name example.com:80"),
        (b"http://example.com/", b"example.com:81", "host_mismatch", "does not name"),
        (b"http://example.com:81/", b"example.com", "host_mismatch", "does not name example.com:81"),
        (b"http://169.254.169.254/", b"metadata", "host_mismatch", "does not name"),
    ],
)
def test_bad_absolute_targets(target: bytes, host: bytes | None, code: str, message: str) -> None:
    found = parse_absolute_target(target, host)
    assert isinstance(found, Denial) and (found.status, found.code) == (400, code)
    assert message in found.message


# -- credentials -------------------------------------------------------------------------------

KEY = generate_key().reveal()
OTHER = generate_key().reveal()


def _digest(presented: str) -> bytes | None:
    return ("d:" + presented).encode() if is_well_formed(presented) else None


def _state() -> RuntimeState:
    state = RuntimeState(None)  # type: ignore[arg-type]  # the vault is only used for loading
    agent = make_agent()
    state.agents = {agent.id: agent, "ag_2": make_agent(id="ag_2", name="acme-other-dev")}
    state.agent_ids = {a.name: a.id for a in state.agents.values()}
    state.keys = {b"d:" + KEY.encode(): make_key()}
    return state


def _request(*values: bytes, ip: str = "127.0.0.1") -> IncomingRequest:
    headers = [(b"proxy-authorization", v) for v in values]
    return IncomingRequest("CONNECT", b"x:443", "", b"", headers, b"", ip, 5000, "1.1", True)


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def test_a_good_key_names_its_agent_and_the_user_part_is_informative() -> None:
    state = _state()
    for user in ("acme-research-dev", "", "anything", "ghost-agent-dev"):
        found = authenticate(_request(_basic(user, KEY)), state, _digest, NOW)
        assert not isinstance(found, Denial) and (found[0].name, found[1].id) == ("acme-research-dev", "key_1")
    lower = _request(b"basic " + base64.b64encode(f"x:{KEY}".encode()))
    assert not isinstance(authenticate(lower, state, _digest, NOW), Denial)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ((), 407, "key_missing"),
        ((b"Bearer " + KEY.encode(),), 407, "key_malformed"),
        ((_basic("a", KEY), _basic("a", KEY)), 407, "key_malformed"),
        ((b"Basic !!!notbase64",), 407, "key_malformed"),
        ((b"Basic " + base64.b64encode(KEY.encode()),), 407, "key_malformed"),
        ((b"Basic " + base64.b64encode(b"a:\xff\xfe"),), 407, "key_malformed"),
        ((_basic("acme-research-dev", "gp_notakey"),), 407, "key_malformed"),
        ((_basic("acme-research-dev", OTHER),), 407, "key_unknown"),
        ((_basic("acme-other-dev", KEY),), 407, "agent_mismatch"),
    ],
)
def test_credential_refusals(headers: tuple[bytes, ...], status: int, code: str) -> None:
    found = authenticate(_request(*headers), _state(), _digest, NOW)
    assert isinstance(found, Denial) and (found.status, found.code) == (status, code)
    assert KEY not in found.message and OTHER not in found.message


@pytest.mark.parametrize(
    ("key", "agent", "ip", "status", "code"),
    [
        ({"revoked_at": NOW}, {}, "127.0.0.1", 407, "key_revoked"),
        ({"expires_at": NOW - timedelta(seconds=1)}, {}, "127.0.0.1", 407, "key_expired"),
        ({"max_uses": 1, "uses_left": 0}, {}, "127.0.0.1", 407, "key_used_up"),
        ({}, {"status": AgentStatus.SUSPENDED}, "127.0.0.1", 403, "agent_suspended"),
        ({"cidrs": ("10.0.0.0/8",)}, {}, "127.0.0.1", 403, "source_not_allowed"),
        ({"cidrs": ("10.0.0.0/8",)}, {}, "::ffff:10.1.2.3", 0, "ok"),
        ({"cidrs": ("10.0.0.0/8",)}, {}, "10.1.2.3", 0, "ok"),
    ],
)
def test_key_and_agent_checks_mirror_the_gateway(
    key: dict[str, object], agent: dict[str, object], ip: str, status: int, code: str
) -> None:
    state = _state()
    state.keys = {b"d:" + KEY.encode(): replace(make_key(), **key)}  # type: ignore[arg-type]
    state.agents["ag_1"] = replace(make_agent(), **agent)  # type: ignore[arg-type]
    found = authenticate(_request(_basic("x", KEY), ip=ip), state, _digest, NOW)
    if code == "ok":
        assert not isinstance(found, Denial)
    else:
        assert isinstance(found, Denial) and (found.status, found.code) == (status, code)


# -- the allowlist -----------------------------------------------------------------------------


def _rule(host: str, *ports: int) -> EgressRule:
    return EgressRule(f"eg_{host}", "ag_1", host, ports, NOW)


@pytest.mark.parametrize(
    ("rules", "target", "allowed", "reason"),
    [
        ((), "api.example.com:443", False, "host_not_allowed"),
        ((_rule("api.example.com"),), "api.example.com:443", True, "allowed"),
        ((_rule("api.example.com"),), "api.example.com:80", True, "allowed"),
        ((_rule("api.example.com"),), "api.example.com:8443", False, "port_not_allowed"),
        ((_rule("api.example.com", 8443),), "api.example.com:443", False, "port_not_allowed"),
        ((_rule("api.example.com", 8443),), "api.example.com:8443", True, "allowed"),
        ((_rule("*.example.com"),), "a.b.example.com:443", True, "allowed"),
        ((_rule("*.example.com"),), "example.com:443", False, "host_not_allowed"),
        ((_rule("example.com", 1), _rule("*.example.com")), "x.example.com:443", True, "allowed"),
        ((_rule("127.0.0.1"),), "2130706433:443", True, "allowed"),
        ((_rule("not a host!"),), "api.example.com:443", False, "host_not_allowed"),
    ],
)
def test_allowlist_decisions(rules: tuple[EgressRule, ...], target: str, allowed: bool, reason: str) -> None:
    parsed = parse_connect_target(target.encode())
    assert isinstance(parsed, Target)
    decision = decide(make_agent(), rules, parsed)
    assert (decision.allowed, decision.reason, decision.report_only) == (allowed, reason, False)
    if not allowed:
        assert f"gatepass egress allow acme-research-dev {parsed.label}" in decision.sentence


def test_report_mode_lets_a_miss_through_and_says_so() -> None:
    target = Target(parse_host("elsewhere.example"), 443)
    decision = decide(make_agent(mode=PolicyMode.REPORT), (), target)
    assert (decision.allowed, decision.reason, decision.report_only) == (True, "host_not_allowed", True)
    assert decision.sentence.startswith("report-only: would deny: ")
    hit = decide(make_agent(mode=PolicyMode.REPORT), (_rule("elsewhere.example"),), target)
    assert (hit.allowed, hit.report_only, hit.rule_id) == (True, False, "eg_elsewhere.example")


def test_headers_in_both_directions() -> None:
    sent = [
        (b"host", b"example.com"),
        (b"proxy-authorization", b"Basic c2VjcmV0"),
        (b"proxy-connection", b"keep-alive"),
        (b"connection", b"keep-alive, x-hop"),
        (b"x-hop", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"te", b"trailers"),
        (b"content-length", b"3"),
        (b"expect", b"100-continue"),
        (b"x-api-key", b"agent's own"),
        (b"cookie", b"a=b"),
    ]
    assert forward_headers(sent) == [(b"host", b"example.com"), (b"x-api-key", b"agent's own"), (b"cookie", b"a=b")]
    back = [(b"content-length", b"2"), (b"connection", b"close"), (b"set-cookie", b"c=d"), (b"transfer-encoding", b"x")]
    assert response_headers(back, b"req_1") == [
        (b"content-length", b"2"),
        (b"set-cookie", b"c=d"),
        (b"x-gatepass-request-id", b"req_1"),
    ]
