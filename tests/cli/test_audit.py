import itertools
import json
from pathlib import Path

import pytest

from tests.conftest import Gp, fake_secret


@pytest.fixture
def session(gp: Gp) -> Gp:
    """A home with a handful of audited changes."""
    assert gp("init").code == 0
    assert gp("secret", "add", "anthropic-main", "--upstream", "anthropic", input=fake_secret()).code == 0
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com").code == 0
    assert gp("agent", "create", "acme-coder-dev", "--owner", "me@example.com").code == 0
    assert gp("allow", "acme-research-dev", "anthropic").code == 0
    assert gp("key", "issue", "acme-research-dev").code == 0
    assert gp("revoke", "acme-research-dev").code == 0
    return gp


def test_every_mutating_command_is_audited(session: Gp) -> None:
    records = json.loads(session("audit", "tail", "-n", "100", "--json").out)
    assert [r["action"] for r in records] == [
        "home.init",
        "upstream.add",
        "secret.add",
        "agent.create",
        "agent.create",
        "grant.add",
        "key.issue",
        "key.revoke",
        "agent.revoke",
    ]
    assert [r["seq"] for r in records] == list(range(1, 10))
    assert all(r["actor"].startswith("cli:") for r in records)
    for earlier, later in itertools.pairwise(records):
        assert later["prev"] == earlier["hash"]


def test_tail_filters(session: Gp) -> None:
    research = json.loads(session("audit", "tail", "--agent", "acme-research-dev", "--json").out)
    assert {r["action"] for r in research} == {"agent.create", "grant.add", "key.issue", "key.revoke", "agent.revoke"}
    keys = json.loads(session("audit", "tail", "--action", "key.", "--json").out)
    assert [r["action"] for r in keys] == ["key.issue", "key.revoke"]
    assert len(json.loads(session("audit", "tail", "-n", "2", "--json").out)) == 2
    assert len(json.loads(session("audit", "tail", "--since", "1h", "--json").out)) == 9
    text = session("audit", "tail", "-n", "1")
    assert "agent.revoke acme-research-dev ok admin" in text.out
    bad = session("audit", "tail", "--since", "yesterday")
    assert bad.code == 2 and "invalid --since" in bad.err


def _lines(home: Path) -> list[str]:
    return (home / "audit" / "audit.jsonl").read_text().splitlines(keepends=True)


def _write(home: Path, lines: list[str]) -> None:
    (home / "audit" / "audit.jsonl").write_text("".join(lines))


def test_verify_ok_then_each_kind_of_tampering(session: Gp, home: Path) -> None:
    ok = session("audit", "verify")
    assert ok.code == 0 and ok.out.startswith("ok: 9 records")
    original = _lines(home)

    edited = list(original)
    edited[3] = edited[3].replace("acme-research-dev", "acme-research-prd")
    _write(home, edited)
    result = session("audit", "verify")
    assert (result.code, result.out.split(":")[:3]) == (1, ["TAMPERED", " record 4", " edited"])

    _write(home, original[:4] + original[5:])
    result = session("audit", "verify", "--json")
    report = json.loads(result.out)
    assert result.code == 1 and report["problem"]["kind"] == "deleted" and report["problem"]["seq"] == 5

    swapped = list(original)
    swapped[5], swapped[6] = swapped[6], swapped[5]
    _write(home, swapped)
    report = json.loads(session("audit", "verify", "--json").out)
    assert (report["ok"], report["problem"]["kind"], report["problem"]["seq"]) == (False, "reordered", 6)

    _write(home, original[:6])
    report = json.loads(session("audit", "verify", "--json").out)
    assert (report["ok"], report["problem"]["kind"]) == (False, "truncated")

    _write(home, original)
    assert session("audit", "verify").code == 0


def test_export_and_verify_the_export(session: Gp, tmp_path: Path, home: Path) -> None:
    out = tmp_path / "audit-export.jsonl"
    exported = session("audit", "export", "-o", str(out))
    assert exported.code == 0 and "exported 9 records" in exported.err
    assert session("audit", "verify", "--file", str(out)).code == 0
    assert session("audit", "verify", "--file", str(out), "--public-key", str(home / "audit.pub")).code == 0
    lines = out.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("upstream.add", "upstream.rm")
    out.write_text("".join(lines))
    result = session("audit", "verify", "--file", str(out))
    assert result.code == 1 and "edited" in result.out
    again = session("audit", "export", "-o", str(out))
    assert again.code == 2 and "exists" in again.err
