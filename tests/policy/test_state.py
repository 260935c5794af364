"""make_plan: which changes, in which order, and what it refuses; a grant's leak action, file and CLI alike."""

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from gatepass.control.app import Gatepass
from gatepass.errors import ConflictError
from gatepass.model import AuthStyle, KeyDefaults, PolicyMode, UpstreamType
from gatepass.policy.state import AgentSpec, GrantSpec, PolicyState, UpstreamSpec, _phase, current_state, make_plan
from tests.conftest import Gp

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


def test_a_change_of_leak_action_replaces_the_grant() -> None:
    redact = replace(AGENT, grants=frozenset({GrantSpec("anthropic", leaks="redact")}))
    plan = make_plan(FULL, PolicyState(FULL.upstreams, {AGENT.name: redact}, KeyDefaults()))
    assert [str(c) for c in plan] == [
        "- grant acme-research-dev: anthropic",
        "+ grant acme-research-dev: anthropic leaks=redact",
    ]


LEAKS_FILE = """\
[upstreams.anthropic]
type = "anthropic"

[agents.acme-research-dev]
owner = "me@example.com"

[[agents.acme-research-dev.grants]]
upstream = "anthropic"
leaks = "redact"
"""


def _state() -> PolicyState:
    with Gatepass.open() as app, app.read() as tx:
        return current_state(tx)


def test_leak_action_file_and_cli_agree(gp: Gp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "gatepass.toml"
    file.write_text(LEAKS_FILE)
    assert gp("init").code == 0
    assert gp("upstream", "add", "anthropic", "--type", "anthropic").code == 0
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com").code == 0
    assert gp("allow", "acme-research-dev", "anthropic", "--leaks", "redact").code == 0
    same = gp("plan", "-f", str(file), "--exit-code")
    assert same.code == 0 and "no changes" in same.err, same
    by_commands = _state()

    monkeypatch.setenv("GATEPASS_HOME", str(tmp_path / "second"))
    assert gp("init").code == 0
    assert gp("apply", "-f", str(file)).code == 0
    assert _state() == by_commands

    file.write_text(LEAKS_FILE.replace('"redact"', '"report"'))
    plan = gp("plan", "-f", str(file))
    assert plan.out.splitlines() == [
        "- grant acme-research-dev: anthropic leaks=redact",
        "+ grant acme-research-dev: anthropic leaks=report",
    ]
    assert gp("apply", "-f", str(file)).code == 0
    grants = json.loads(gp("grants", "acme-research-dev", "--json").out)
    assert [(g["upstream"], g["leaks"]) for g in grants] == [("anthropic", "report")]
