"""The decision engine as a table: each case checks the reason, not only allow or deny."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gatepass.model import Agent, AgentStatus, Grant, KeyRecord, PolicyMode
from gatepass.policy.decision import Reason, Request, Result, decide
from tests.factories import NOW, make_agent, make_key

AGENT = make_agent()
KEY = make_key()
GRANTS = (
    Grant("gr_llm", "ag_1", "anthropic", models=("claude-haiku-*",)),
    Grant("gr_gh", "ag_1", "github", methods=("GET",), paths=("/repos/acme/docs/**",)),
    Grant("gr_oa", "ag_1", "openai", paths=("/v1/batches", "/v1/batches/*")),
)


def req(
    upstream: str = "anthropic",
    method: str = "POST",
    path: str = "/v1/messages",
    model: str | None = "claude-haiku-4-5",
    **kw: object,
) -> Request:
    return Request(upstream=upstream, method=method, path=path, now=NOW, model=model, **kw)  # type: ignore[arg-type]


CASES = [
    ("granted model", AGENT, KEY, req(), Result.ALLOW, Reason.ALLOWED),
    ("model outside the glob", AGENT, KEY, req(model="claude-opus-4-1"), Result.DENY, Reason.MODEL_NOT_ALLOWED),
    (
        "model-less request (list models)",
        AGENT,
        KEY,
        req(method="GET", path="/v1/models", model=None),
        Result.ALLOW,
        Reason.ALLOWED,
    ),
    ("no grant for the upstream", AGENT, KEY, req(upstream="slack"), Result.DENY, Reason.NO_GRANT),
    (
        "github path inside the glob",
        AGENT,
        KEY,
        req("github", "GET", "/repos/acme/docs/contents/a.md", None),
        Result.ALLOW,
        Reason.ALLOWED,
    ),
    (
        "github path outside the glob",
        AGENT,
        KEY,
        req("github", "GET", "/repos/acme/secret/contents", None),
        Result.DENY,
        Reason.PATH_NOT_ALLOWED,
    ),
    (
        "github write refused",
        AGENT,
        KEY,
        req("github", "PUT", "/repos/acme/docs/contents/a.md", None),
        Result.DENY,
        Reason.METHOD_NOT_ALLOWED,
    ),
    (
        "unknown route without a paths grant",
        AGENT,
        KEY,
        req(path="/v1/organizations/x", known_route=False),
        Result.DENY,
        Reason.ROUTE_NOT_ALLOWED,
    ),
    (
        "unknown route named by a grant",
        AGENT,
        KEY,
        req("openai", "POST", "/v1/batches", None, known_route=False),
        Result.ALLOW,
        Reason.ALLOWED,
    ),
    ("revoked key", AGENT, replace(KEY, revoked_at=NOW), req(), Result.DENY, Reason.KEY_REVOKED),
    ("expired key", AGENT, replace(KEY, expires_at=NOW), req(), Result.DENY, Reason.KEY_EXPIRED),
    ("used-up key", AGENT, replace(KEY, max_uses=1, uses_left=0), req(), Result.DENY, Reason.KEY_USED_UP),
    ("suspended agent", replace(AGENT, status=AgentStatus.SUSPENDED), KEY, req(), Result.DENY, Reason.AGENT_SUSPENDED),
    (
        "source inside the key's CIDR",
        AGENT,
        replace(KEY, cidrs=("10.0.0.0/8",)),
        req(source_ip="10.1.2.3"),
        Result.ALLOW,
        Reason.ALLOWED,
    ),
    (
        "IPv4-mapped source inside the CIDR",
        AGENT,
        replace(KEY, cidrs=("10.0.0.0/8",)),
        req(source_ip="::ffff:10.1.2.3"),
        Result.ALLOW,
        Reason.ALLOWED,
    ),
    (
        "source outside the key's CIDR",
        AGENT,
        replace(KEY, cidrs=("10.0.0.0/8",)),
        req(source_ip="192.168.1.1"),
        Result.DENY,
        Reason.SOURCE_NOT_ALLOWED,
    ),
    (
        "no source known for a CIDR-bound key",
        AGENT,
        replace(KEY, cidrs=("10.0.0.0/8",)),
        req(),
        Result.DENY,
        Reason.SOURCE_NOT_ALLOWED,
    ),
    (
        "upstream outside the key's scope",
        AGENT,
        replace(KEY, upstreams=("github",)),
        req(),
        Result.DENY,
        Reason.UPSTREAM_NOT_IN_KEY,
    ),
]


@pytest.mark.parametrize(("name", "agent", "key", "request_", "result", "reason"), CASES, ids=[c[0] for c in CASES])
def test_decisions(name: str, agent: Agent, key: KeyRecord, request_: Request, result: Result, reason: Reason) -> None:
    decision = decide(agent, key, request_, GRANTS)
    assert (decision.result, decision.reason) == (result, reason), decision.sentence
    assert decision.sentence
    assert (decision.grant_id is not None) == (result is Result.ALLOW)


def test_deny_by_default_without_grants() -> None:
    decision = decide(AGENT, KEY, req(), [])
    assert decision.result is Result.DENY and decision.reason is Reason.NO_GRANT
    assert "gatepass allow acme-research-dev anthropic" in decision.sentence


def test_report_only_lets_policy_denials_through_and_names_them() -> None:
    reporting = replace(AGENT, mode=PolicyMode.REPORT)
    decision = decide(reporting, KEY, req(model="claude-opus-4-1"), GRANTS)
    assert decision.result is Result.ALLOW and decision.report_only
    assert decision.reason is Reason.MODEL_NOT_ALLOWED
    assert "would deny" in decision.sentence


def test_report_only_never_relaxes_key_and_agent_checks() -> None:
    reporting = replace(AGENT, mode=PolicyMode.REPORT)
    assert decide(reporting, replace(KEY, revoked_at=NOW), req(), GRANTS).reason is Reason.KEY_REVOKED
    assert decide(replace(reporting, status=AgentStatus.SUSPENDED), KEY, req(), GRANTS).result is Result.DENY


def test_the_closest_grant_names_the_reason() -> None:
    grants = (
        Grant("g1", "ag_1", "github", methods=("GET",)),
        Grant("g2", "ag_1", "github", methods=("POST",), paths=("/repos/acme/**",)),
    )
    decision = decide(AGENT, KEY, req("github", "POST", "/orgs/acme", None), grants)
    assert decision.reason is Reason.PATH_NOT_ALLOWED


def test_decide_is_pure() -> None:
    before = (AGENT, KEY, GRANTS)
    first = decide(AGENT, KEY, req(), GRANTS)
    assert decide(AGENT, KEY, req(), GRANTS) == first
    assert (AGENT, KEY, GRANTS) == before
