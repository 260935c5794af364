import json

from tests.conftest import Gp


def _agents(gp: Gp) -> list[dict[str, object]]:
    result = gp("agent", "list", "--json")
    assert result.code == 0, result
    return json.loads(result.out)  # type: ignore[no-any-return]


def test_agent_lifecycle(gp: Gp) -> None:
    assert gp("init").code == 0
    created = gp(
        "agent",
        "create",
        "acme-research-dev",
        "--owner",
        "me@example.com",
        "--budget",
        "50/month",
        "--budget",
        "5/day",
        "--description",
        "reads papers",
    )
    assert created.code == 0, created
    (agent,) = _agents(gp)
    assert agent["email"] == "me+acme-research-dev@example.com"
    assert agent["budgets"] == ["5/day", "50/month"]
    assert agent["status"] == "active" and agent["mode"] == "enforce"
    shown = json.loads(gp("agent", "show", "acme-research-dev", "--json").out)
    assert shown["grants"] == [] and shown["keys"] == {"active": 0, "total": 0}
    assert "none (deny all)" in gp("agent", "show", "acme-research-dev").out
    assert gp("agent", "suspend", "acme-research-dev").code == 0
    assert _agents(gp)[0]["status"] == "suspended"
    assert gp("agent", "resume", "acme-research-dev").code == 0
    assert _agents(gp)[0]["status"] == "active"
    updated = gp(
        "agent", "update", "acme-research-dev", "--owner", "boss@example.com", "--budget", "10/week", "--mode", "report"
    )
    assert updated.code == 0, updated
    (agent,) = _agents(gp)
    assert (agent["owner"], agent["email"], agent["budgets"], agent["mode"]) == (
        "boss@example.com",
        "boss+acme-research-dev@example.com",
        ["10/week"],
        "report",
    )
    assert gp("agent", "delete", "acme-research-dev", "--yes").code == 0
    assert _agents(gp) == []


def test_bad_agent_input_is_one_line_and_changes_nothing(gp: Gp) -> None:
    assert gp("init").code == 0
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com").code == 0
    before = _agents(gp)
    cases = [
        (("agent", "create", "AcmeBot", "--owner", "me@example.com"), 2, "e.g. acme-research-dev"),
        (("agent", "create", "acme-bot-qa", "--owner", "me@example.com"), 2, "not one of dev, test, staging, prod"),
        (
            ("agent", "create", "acme-bot-dev", "--owner", "me@example.com", "--email", "ME@example.com"),
            2,
            "the agent's address",
        ),
        (("agent", "create", "acme-bot-dev", "--owner", "nobody"), 2, "invalid owner address"),
        (("agent", "create", "acme-bot-dev", "--owner", "me@example.com", "--budget", "50/moth"), 2, "unknown period"),
        (
            ("agent", "create", "acme-bot-dev", "--owner", "me@example.com", "--budget", "5/day", "--budget", "6/day"),
            2,
            "two budgets",
        ),
        (("agent", "create", "acme-research-dev", "--owner", "me@example.com"), 1, "already exists"),
        (("agent", "show", "ghost-bot-dev"), 1, "unknown agent 'ghost-bot-dev'"),
        (("agent", "suspend", "ghost-bot-dev"), 1, "unknown agent"),
        (("agent", "create", "acme-bot-dev"), 2, "Missing option '--owner'"),
        (("revoke", "ghost-bot-dev"), 1, "unknown agent"),
    ]
    for args, code, message in cases:
        result = gp(*args)
        assert result.code == code, (args, result)
        assert message in result.err, (args, result)
        assert result.err.startswith("gatepass: error: ") and result.err.count("\n") == 1, result
        assert result.out == ""
    assert _agents(gp) == before


def test_kill_switch_suspends_and_revokes_every_key(gp: Gp) -> None:
    assert gp("init").code == 0
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com").code == 0
    ids = []
    for _ in range(3):
        issued = gp("key", "issue", "acme-research-dev")
        assert issued.code == 0
        ids.append(issued.err.split("issued key ")[1].split()[0])
    result = gp("revoke", "acme-research-dev")
    assert result.code == 0
    assert "suspended agent acme-research-dev" in result.out
    assert "revoked 3 key(s)" in result.out and all(i in result.out for i in ids)
    keys = json.loads(gp("key", "list", "--json").out)
    assert {k["state"] for k in keys} == {"revoked"}
    assert _agents(gp)[0]["status"] == "suspended"
    again = gp("revoke", "acme-research-dev")
    assert again.code == 0 and "revoked 0 key(s)" in again.out
