import json
import re

from tests.conftest import Gp


def test_key_issue_prints_the_key_alone_once(ready: Gp) -> None:
    gp = ready
    assert gp("allow", "acme-research-dev", "anthropic").code == 0
    issued = gp(
        "key",
        "issue",
        "acme-research-dev",
        "--ttl",
        "2h",
        "--uses",
        "3",
        "--cidr",
        "127.0.0.1",
        "--cidr",
        "10.0.0.0/8",
        "--budget",
        "5/day",
        "--upstream",
        "anthropic",
    )
    assert issued.code == 0, issued
    assert re.fullmatch(r"gp_[0-9A-Za-z]{39}\n", issued.out)
    key = issued.out.strip()
    assert key not in issued.err
    listed = json.loads(gp("key", "list", "--json").out)
    assert len(listed) == 1
    entry = listed[0]
    assert entry["agent"] == "acme-research-dev" and entry["state"] == "active"
    assert (entry["max_uses"], entry["uses_left"]) == (3, 3)
    assert entry["cidrs"] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert entry["upstreams"] == ["anthropic"] and entry["budgets"] == ["5/day"]
    assert key not in json.dumps(listed) and key not in gp("key", "list").out
    assert gp("key", "revoke", entry["id"]).code == 0
    assert "already revoked" in gp("key", "revoke", entry["id"]).err
    assert json.loads(gp("key", "list", "--json").out)[0]["state"] == "revoked"
    assert "no active keys" in gp("key", "list").err


def test_ttl_defaults_and_maximum(ready: Gp) -> None:
    gp = ready
    assert json.loads(gp("key", "defaults", "--json").out) == {"default_ttl": "1h", "max_ttl": "30d"}
    too_long = gp("key", "issue", "acme-research-dev", "--ttl", "31d")
    assert too_long.code == 2 and "longer than the maximum" in too_long.err
    assert gp("key", "defaults", "--ttl", "2h", "--max-ttl", "90d").code == 0
    assert json.loads(gp("key", "defaults", "--json").out) == {"default_ttl": "2h", "max_ttl": "90d"}
    assert gp("key", "issue", "acme-research-dev", "--ttl", "60d").code == 0
    bad = gp("key", "defaults", "--ttl", "100d")
    assert bad.code == 2 and "longer than the maximum" in bad.err


def test_bad_key_input(ready: Gp) -> None:
    gp = ready
    cases = [
        (("key", "issue", "acme-research-dev", "--ttl", "soon"), 2, "invalid TTL"),
        (("key", "issue", "acme-research-dev", "--uses", "0"), 2, "at least 1"),
        (("key", "issue", "acme-research-dev", "--cidr", "10.0.0.1/8"), 2, "did you mean 10.0.0.0/8"),
        (("key", "issue", "acme-research-dev", "--budget", "5"), 2, "AMOUNT/PERIOD"),
        (("key", "issue", "acme-research-dev", "--upstream", "anthropic"), 2, "has no grant for upstream"),
        (("key", "issue", "acme-research-dev", "--upstream", "nowhere"), 1, "unknown upstream"),
        (("key", "issue", "ghost-bot-dev"), 1, "unknown agent"),
        (("key", "revoke", "key_nothere"), 1, "no key with id"),
        (("key", "list", "--agent", "ghost-bot-dev"), 1, "unknown agent"),
    ]
    for args, code, message in cases:
        result = gp(*args)
        assert (result.code, message in result.err, result.out) == (code, True, ""), (args, result)
    assert json.loads(gp("key", "list", "--json").out) == []


def test_suspended_agent_gets_no_key(ready: Gp) -> None:
    gp = ready
    assert gp("agent", "suspend", "acme-research-dev").code == 0
    result = gp("key", "issue", "acme-research-dev")
    assert result.code == 2 and "resume it first" in result.err and result.out == ""
