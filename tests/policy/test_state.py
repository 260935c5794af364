"""make_plan on its own: which changes, in which order, and what it refuses."""

from datetime import timedelta

import pytest

from gatepass.errors import ConflictError
from gatepass.model import AuthStyle, KeyDefaults, PolicyMode, UpstreamType
from gatepass.policy.state import AgentSpec, GrantSpec, PolicyState, UpstreamSpec, _phase, make_plan

ANTHROPIC = UpstreamSpec(
    "anthropic", UpstreamType.ANTHROPIC, "https://api.anthropic.com", AuthStyle("header", "x-api-key"), "anthropic-main"
)
AGENT = AgentSpec(
    "acme-research-dev",
    "me@example.com",
    "me+acme-research-dev@example.com",
    "",
    PolicyMode.ENFORCE,
    (),
    frozenset({GrantSpec("anthropic")}),
)
EMPTY = PolicyState({}, {}, KeyDefaults())
FULL = PolicyState({"anthropic": ANTHROPIC}, {AGENT.name: AGENT}, KeyDefaults())


def test_from_empty_everything_is_added() -> None:
    plan = make_plan(EMPTY, FULL)
    assert [str(c) for c in plan] == [
        "+ upstream anthropic: anthropic https://api.anthropic.com, secret anthropic-main",
        "+ agent acme-research-dev: owner me@example.com, budgets none",
        "+ grant acme-research-dev: anthropic",
    ]


def test_same_state_has_no_plan() -> None:
    assert make_plan(FULL, FULL) == []


def test_removals_come_after_the_grants_that_depend_on_them() -> None:
    plan = make_plan(FULL, EMPTY)
    assert sorted(plan, key=_phase)[-1].kind == "upstream"
    assert [c.op for c in plan] == ["-", "-"]


def test_type_change_is_refused_with_the_fix() -> None:
    other = PolicyState(
        {
            "anthropic": UpstreamSpec(
                "anthropic", UpstreamType.OPENAI, "https://api.openai.com", AuthStyle("bearer"), None
            )
        },
        {},
        KeyDefaults(),
    )
    with pytest.raises(ConflictError, match="gatepass upstream rm anthropic"):
        make_plan(FULL, other)


def test_key_defaults_change() -> None:
    wanted = PolicyState({}, {}, KeyDefaults(default_ttl=timedelta(hours=2)))
    (change,) = make_plan(EMPTY, wanted)
    assert str(change) == "~ key-defaults keys: default TTL 1h -> 2h; max TTL 30d -> 30d"
