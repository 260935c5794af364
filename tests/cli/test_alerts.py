import json
from pathlib import Path

from tests.conftest import Gp


def test_alert_add_list_rm_and_the_webhook_secret(gp: Gp, home: Path) -> None:
    assert gp("init").code == 0
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com").code == 0
    added = gp("alert", "add", "acme-research-dev", "10:warn", "$50/month:stop", "100/total:revoke")
    assert added.code == 0, added
    listed = json.loads(gp("alert", "list", "--json").out)
    assert [(a["amount"], a["period"], a["action"]) for a in listed] == [
        ("$10.00", "month", "warn"),
        ("$50.00", "month", "stop"),
        ("$100.00", "total", "revoke"),
    ]
    again = gp("alert", "add", "acme-research-dev", "10:warn")
    assert again.code == 0 and len(json.loads(gp("alert", "list", "--json").out)) == 3
    assert gp("alert", "rm", "acme-research-dev", "50/month:stop").code == 0
    assert gp("alert", "rm", "acme-research-dev", listed[0]["id"]).code == 0
    assert [a["action"] for a in json.loads(gp("alert", "list", "--json").out)] == ["revoke"]
    secret = gp("alert", "webhook-secret")
    assert secret.out.startswith("whsec_") and gp("alert", "webhook-secret").out == secret.out
    assert (home / "webhook.secret").stat().st_mode & 0o077 == 0
    actions = [r["action"] for r in json.loads(gp("audit", "tail", "-n", "20", "--json").out)]
    assert actions.count("alert.set") == 3  # adding a threshold it already has changes nothing


def test_bad_thresholds(gp: Gp) -> None:
    assert gp("init").code == 0
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com").code == 0
    for args, message in [
        (("alert", "add", "acme-research-dev", "10"), "e.g. 50/month:stop"),
        (("alert", "add", "acme-research-dev", "10:explode"), "e.g. 50/month:stop"),
        (("alert", "add", "ghost-bot-dev", "10:warn"), "unknown agent"),
        (("alert", "rm", "acme-research-dev", "10:warn"), "has no threshold"),
    ]:
        result = gp(*args)
        assert result.code != 0 and message in result.err and result.err.count("\n") == 1, (args, result)
    assert json.loads(gp("alert", "list", "--json").out) == []


def test_alerts_in_the_policy_file(gp: Gp, tmp_path: Path) -> None:
    assert gp("init").code == 0
    policy = tmp_path / "gatepass.toml"
    policy.write_text(
        '[agents.acme-research-dev]\nowner = "me@example.com"\nalerts = ["10:warn", "50:stop"]\nrpm = 60\n'
    )
    assert gp("apply", "-f", str(policy)).code == 0
    assert len(json.loads(gp("alert", "list", "--json").out)) == 2
    assert json.loads(gp("agent", "list", "--json").out)[0]["limits"] == {"rpm": 60}
    assert gp("plan", "-f", str(policy), "--exit-code").code == 0
    policy.write_text(policy.read_text().replace('"50:stop"', '"60:stop"'))
    plan = gp("plan", "-f", str(policy))
    assert "alerts 10/month:warn, 50/month:stop -> 10/month:warn, 60/month:stop" in plan.out
    bad = tmp_path / "bad.toml"
    bad.write_text('[agents.acme-research-dev]\nowner = "me@example.com"\nalerts = ["10:explode"]\n')
    result = gp("plan", "-f", str(bad))
    assert result.code == 1 and f"{bad}:3:" in result.err
