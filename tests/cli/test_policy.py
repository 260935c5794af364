"""Plan and apply: the file and the imperative commands produce the same state, both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatepass.control.app import Gatepass
from gatepass.policy.state import current_state
from tests.conftest import Gp, fake_secret
from tests.policy.test_document import GOOD

IMPERATIVE = [
    ("key", "defaults", "--ttl", "2h", "--max-ttl", "7d"),
    ("upstream", "add", "anthropic", "--type", "anthropic", "--secret", "anthropic-main"),
    (
        "upstream",
        "add",
        "docs",
        "--type",
        "http",
        "--base-url",
        "https://docs.example.com/api/",
        "--auth",
        "header:X-Api-Key",
    ),
    (
        "agent",
        "create",
        "acme-research-dev",
        "--owner",
        "me@example.com",
        "--budget",
        "50/month,5/day",
        "--mode",
        "report",
    ),
    ("allow", "acme-research-dev", "anthropic", "--models", "claude-haiku-*", "--models", "claude-sonnet-*"),
    ("allow", "acme-research-dev", "docs", "--methods", "GET", "--paths", "/v1/**"),
]


def _state() -> object:
    with Gatepass.open() as app, app.read() as tx:
        return current_state(tx)


def _file(tmp_path: Path, text: str = GOOD) -> str:
    path = tmp_path / "gatepass.toml"
    path.write_text(text)
    return str(path)


def test_imperative_then_plan_shows_no_changes(gp: Gp, tmp_path: Path) -> None:
    assert gp("init").code == 0
    for args in IMPERATIVE:
        assert gp(*args).code == 0, args
    result = gp("plan", "-f", _file(tmp_path), "--exit-code")
    assert result.code == 0, result
    assert "no changes" in result.err and result.out == ""


def test_apply_gives_the_same_state_as_the_commands(
    gp: Gp, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gp("init").code == 0
    for args in IMPERATIVE:
        assert gp(*args).code == 0
    by_commands = _state()
    monkeypatch.setenv("GATEPASS_HOME", str(tmp_path / "second"))
    assert gp("init").code == 0
    applied = gp("apply", "-f", _file(tmp_path))
    assert applied.code == 0, applied
    assert "5 to add, 1 to change, 0 to remove" in applied.err
    assert _state() == by_commands
    again = gp("apply", "-f", _file(tmp_path))
    assert again.code == 0 and "already matches" in again.err


def test_plan_lists_changes_and_apply_makes_them(gp: Gp, tmp_path: Path) -> None:
    assert gp("init").code == 0
    assert gp("secret", "add", "anthropic-main", "--upstream", "anthropic", input=fake_secret()).code == 0
    assert gp("agent", "create", "old-bot-dev", "--owner", "me@example.com").code == 0
    assert gp("key", "issue", "old-bot-dev").code == 0
    plan = gp("plan", "-f", _file(tmp_path), "--json")
    changes = json.loads(plan.out)["changes"]
    assert {(c["op"], c["kind"], c["name"]) for c in changes} == {
        ("add", "upstream", "docs"),
        ("add", "agent", "acme-research-dev"),
        ("add", "grant", "acme-research-dev"),
        ("remove", "agent", "old-bot-dev"),
        ("change", "key-defaults", "keys"),
    }
    assert gp("plan", "-f", _file(tmp_path), "--exit-code").code == 1
    applied = gp("apply", "-f", _file(tmp_path))
    assert applied.code == 0, applied
    agents = json.loads(gp("agent", "list", "--json").out)
    assert [a["name"] for a in agents] == ["acme-research-dev"]
    assert {k["state"] for k in json.loads(gp("key", "list", "--json").out)} == set()  # deleted with its agent
    actions = [r["action"] for r in json.loads(gp("audit", "tail", "-n", "50", "--json").out)]
    assert "policy.apply" in actions and "agent.delete" in actions and "key.revoke" in actions
    changed = GOOD.replace('"50/month", "5/day"', '"20/month"').replace('models = ["claude-sonnet-*", ', "models = [")
    replan = gp("plan", "-f", _file(tmp_path, changed))
    assert "~ agent acme-research-dev: budgets 5/day, 50/month -> 20/month" in replan.out
    assert "- grant acme-research-dev: anthropic models=claude-haiku-*,claude-sonnet-*" in replan.out
    assert "+ grant acme-research-dev: anthropic models=claude-haiku-*" in replan.out


def test_apply_is_all_or_nothing(gp: Gp, tmp_path: Path) -> None:
    assert gp("init").code == 0
    assert gp("upstream", "add", "docs", "--type", "openai").code == 0  # the file says http: a conflict
    before = _state()
    result = gp("apply", "-f", _file(tmp_path))
    assert result.code == 1 and "remove it first with gatepass upstream rm docs" in result.err
    assert _state() == before


def test_bad_file_changes_nothing(gp: Gp, tmp_path: Path) -> None:
    assert gp("init").code == 0
    before = _state()
    path = _file(tmp_path, GOOD.replace('"5/day"', '"5/dya"'))
    result = gp("apply", "-f", path)
    assert result.code == 1
    assert result.err.startswith(f"gatepass: error: {path}:16: ") and result.err.count("\n") == 1
    assert _state() == before
