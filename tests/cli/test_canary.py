"""``gatepass canary add/list/rm``: ids and names on the screen, never a decoy value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatepass.control.app import Gatepass
from gatepass.control.canaries import canary_values
from tests.conftest import Gp

AGENT = "acme-research-dev"


def all_values() -> list[str]:
    with Gatepass.open() as app, app.read() as tx:
        return [v for c in tx.list_canaries() for v in canary_values(app.vault, c).values()]


def test_add_list_rm(ready: Gp, home: Path) -> None:
    added = ready("canary", "add", AGENT)
    assert added.code == 0, added
    first = added.out.strip()
    assert first.startswith("cn_") and added.out.count("\n") == 1
    assert (
        f"planted aws canary {first} for {AGENT} in its environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
        in added.err
    )
    second = ready("canary", "add", AGENT, "--kind", "stripe", "--file", ".env", "--no-revoke")
    assert second.code == 0 and "in the file .env of its working directory (STRIPE_SECRET_KEY)" in second.err
    third = ready("canary", "add", AGENT, "--kind", "github", "--env", "GH_DEPLOY_TOKEN")
    assert third.code == 0 and "GH_DEPLOY_TOKEN" in third.err

    listed = ready("canary", "list", AGENT, "--json")
    assert listed.code == 0
    rows = json.loads(listed.out)
    assert sorted((r["id"], r["kind"], r["env"], r["file"], r["revoke"]) for r in rows) == sorted(
        [
            (first, "aws", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], None, True),
            (second.out.strip(), "stripe", ["STRIPE_SECRET_KEY"], ".env", False),
            (third.out.strip(), "github", ["GH_DEPLOY_TOKEN"], None, True),
        ]
    )
    assert all(r["agent"] == AGENT and r["created_at"] for r in rows)
    table = ready("canary", "list")
    assert table.code == 0 and first in table.out and "STRIPE_SECRET_KEY" in table.out

    shown = added.out + added.err + second.out + second.err + third.out + third.err + listed.out + table.out
    audit = ready("audit", "tail", "-n", "50", "--json").out
    values = all_values()
    assert len(values) == 4
    for value in values:
        assert value not in shown and value not in audit

    removed = ready("canary", "rm", AGENT, first)
    assert removed.code == 0 and f"removed aws canary {first} from {AGENT}" in removed.err
    left = {r["id"] for r in json.loads(ready("canary", "list", "--json").out)}
    assert left == {second.out.strip(), third.out.strip()}
    actions = [r["action"] for r in json.loads(ready("audit", "tail", "-n", "50", "--json").out)]
    assert actions.count("canary.add") == 3 and actions.count("canary.remove") == 1


def test_empty_list(ready: Gp) -> None:
    result = ready("canary", "list")
    assert result.code == 0 and "gatepass canary add" in result.out + result.err
    assert json.loads(ready("canary", "list", "--json").out) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("add", "ghost-bot-dev"), 1, "unknown agent 'ghost-bot-dev'"),
        (("add", AGENT, "--kind", "gcp"), 2, "use one of aws, github, anthropic, openai, slack, stripe, database"),
        (("add", AGENT, "--file", "/tmp/.env"), 2, "must be relative to the agent's working directory"),
        (("add", AGENT, "--file", "../.env"), 2, "must stay inside the agent's working directory"),
        (("add", AGENT, "--kind", "github", "--env", "GITHUB_TOKEN"), 2, "gatepass run sets for the agent"),
        (("add", AGENT, "--env", "ONLY_ONE"), 2, "give --env that many times"),
        (("list", "ghost-bot-dev"), 1, "unknown agent"),
        (("rm", AGENT, "cn_nothing"), 1, "has no canary 'cn_nothing'"),
        (("rm", AGENT), 2, "Missing argument"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(ready: Gp, args: tuple[str, ...], code: int, message: str) -> None:
    result = ready("canary", *args)
    assert (result.code, result.out) == (code, ""), result
    assert message in result.err and result.err.count("\n") == 1, result
    assert result.err.startswith("gatepass: error: ")


def test_a_clash_is_refused_and_changes_nothing(ready: Gp) -> None:
    assert ready("canary", "add", AGENT).code == 0
    again = ready("canary", "add", AGENT)
    assert again.code == 1 and "pick other names with --env" in again.err
    assert len(json.loads(ready("canary", "list", "--json").out)) == 1
