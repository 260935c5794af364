import json
from pathlib import Path

import pytest

from tests.conftest import Gp


def test_allow_list_and_rm(ready: Gp) -> None:
    gp = ready
    assert gp("egress", "list", "--json").out.strip() == "[]"
    empty = gp("egress", "list", "acme-research-dev")
    assert empty.code == 0 and empty.out == "" and "gatepass egress allow acme-research-dev HOST" in empty.err
    allowed = gp("egress", "allow", "acme-research-dev", "api.example.com:443", "*.PyPI.org", "[2001:db8::1]:8443")
    assert allowed.code == 0, allowed
    ids = allowed.out.split()
    assert len(ids) == 3 and all(i.startswith("eg_") for i in ids)
    assert allowed.err.splitlines() == [
        "acme-research-dev may reach api.example.com on ports 443",
        "acme-research-dev may reach *.pypi.org on ports 80,443",
        "acme-research-dev may reach [2001:db8::1] on ports 8443",
    ]
    same = gp("egress", "allow", "acme-research-dev", "api.example.com:443")
    assert same.out.strip() == ids[0] and "nothing changed" in same.err
    rules = json.loads(gp("egress", "list", "acme-research-dev", "--json").out)
    assert [(r["agent"], r["host"], r["ports"]) for r in rules] == [
        ("acme-research-dev", "*.pypi.org", [80, 443]),
        ("acme-research-dev", "2001:db8::1", [8443]),
        ("acme-research-dev", "api.example.com", [443]),
    ]
    assert all(r["created_at"].endswith("Z") for r in rules)
    table = gp("egress", "list").out.splitlines()
    assert table[0].split() == ["AGENT", "HOST", "PORTS", "ID", "CREATED"]
    assert table[1].split()[:3] == ["acme-research-dev", "*.pypi.org", "80,443"]
    removed = gp("egress", "rm", "acme-research-dev", "*.pypi.org")
    assert removed.code == 0 and "may no longer reach *.pypi.org" in removed.err
    assert [r["host"] for r in json.loads(gp("egress", "list", "--json").out)] == ["2001:db8::1", "api.example.com"]
    audit = json.loads(gp("audit", "tail", "--action", "egress.", "--json").out)
    assert [r["action"] for r in audit] == ["egress.allow"] * 3 + ["egress.remove"]


def test_bad_egress_input(ready: Gp) -> None:
    gp = ready
    cases = [
        (("egress", "allow", "acme-research-dev", "*"), 2, "'*' may only be the whole first label"),
        (("egress", "allow", "acme-research-dev", "https://x.example.com"), 2, "no scheme or path"),
        (("egress", "allow", "acme-research-dev", "x.example.com:70000"), 2, "from 1 to 65535"),
        (("egress", "allow", "acme-research-dev", "*.com"), 2, "at least two labels"),
        (("egress", "allow", "acme-research-dev"), 2, "Missing argument"),
        (("egress", "allow", "ghost-agent-dev", "x.example.com"), 1, "unknown agent"),
        (("egress", "rm", "acme-research-dev", "x.example.com"), 1, "has no egress rule for x.example.com"),
        (("egress", "list", "ghost-agent-dev"), 1, "unknown agent"),
    ]
    for args, code, message in cases:
        result = gp(*args)
        assert (result.code, message in result.err, result.err.count("\n")) == (code, True, 1), (args, result)
    assert json.loads(gp("egress", "list", "--json").out) == []


def test_help_says_how_agents_use_the_proxy(ready: Gp) -> None:
    help_text = ready("egress", "--help").out
    assert "HTTPS_PROXY=http://AGENT:KEY@127.0.0.1:8790" in help_text and "allow_networks" in help_text


POLICY = """\
[agents.acme-research-dev]
owner = "me@example.com"
egress = ["api.example.com:443,8443", "*.PyPI.org", "[2001:db8::1]:443"]
"""


def _policy(tmp_path: Path, text: str = POLICY) -> str:
    path = tmp_path / "gatepass.toml"
    path.write_text(text)
    return str(path)


def _rules(gp: Gp) -> list[tuple[str, str, list[int]]]:
    return [(r["agent"], r["host"], r["ports"]) for r in json.loads(gp("egress", "list", "--json").out)]


def test_the_policy_file_and_the_commands_make_the_same_allowlist(
    gp: Gp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gp("init").code == 0
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com").code == 0
    commands = gp("egress", "allow", "acme-research-dev", "api.example.com:8443,443", "*.pypi.org", "[2001:db8::1]:443")
    assert commands.code == 0, commands
    by_commands = _rules(gp)
    plan = gp("plan", "-f", _policy(tmp_path), "--exit-code")
    assert plan.code == 0 and "no changes" in plan.err, plan
    monkeypatch.setenv("GATEPASS_HOME", str(tmp_path / "second"))
    assert gp("init").code == 0
    applied = gp("apply", "-f", _policy(tmp_path))
    assert applied.code == 0, applied
    assert _rules(gp) == by_commands
    narrowed = POLICY.replace('"api.example.com:443,8443"', '"api.example.com:443"').replace(
        ', "[2001:db8::1]:443"', ""
    )
    replan = gp("plan", "-f", _policy(tmp_path, narrowed))
    assert replan.out.splitlines() == [
        "- egress acme-research-dev: [2001:db8::1]:443",
        "- egress acme-research-dev: api.example.com:443,8443",
        "+ egress acme-research-dev: api.example.com:443",
    ]
    assert gp("apply", "-f", _policy(tmp_path, narrowed)).code == 0
    assert _rules(gp) == [
        ("acme-research-dev", "*.pypi.org", [80, 443]),
        ("acme-research-dev", "api.example.com", [443]),
    ]
    actions = [r["action"] for r in json.loads(gp("audit", "tail", "--action", "egress.", "--json").out)]
    assert actions == ["egress.allow"] * 3 + ["egress.remove", "egress.remove", "egress.allow"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('"*"', "'*' may only be the whole first label"),
        ('"https://api.example.com"', "no scheme or path"),
        ('"api.example.com:0"', "from 1 to 65535"),
        ('"api.example.com", "API.example.com:8443"', "the host api.example.com is given twice"),
    ],
)
def test_bad_egress_entries_name_the_line(gp: Gp, tmp_path: Path, entry: str, message: str) -> None:
    assert gp("init").code == 0
    text = POLICY.replace('"api.example.com:443,8443", "*.PyPI.org", "[2001:db8::1]:443"', entry)
    result = gp("plan", "-f", _policy(tmp_path, text))
    assert result.code == 1 and message in result.err and ":3: " in result.err, result
