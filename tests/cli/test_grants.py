import json

from tests.conftest import Gp


def test_allow_grants_disallow_and_check(ready: Gp) -> None:
    gp = ready
    assert gp("check", "acme-research-dev", "anthropic", "--model", "claude-haiku-4-5").code == 1  # deny by default
    allowed = gp("allow", "acme-research-dev", "anthropic", "--models", "claude-haiku-*,claude-sonnet-*")
    assert allowed.code == 0, allowed
    grant_id = allowed.out.strip()
    same = gp("allow", "acme-research-dev", "anthropic", "--models", "claude-sonnet-*", "--models", "claude-haiku-*")
    assert same.out.strip() == grant_id and "nothing changed" in same.err
    grants = json.loads(gp("grants", "acme-research-dev", "--json").out)
    assert grants == [
        {
            "id": grant_id,
            "agent": "acme-research-dev",
            "upstream": "anthropic",
            "models": ["claude-haiku-*", "claude-sonnet-*"],
            "methods": [],
            "paths": [],
            "leaks": "block",
            "created_at": grants[0]["created_at"],
        }
    ]
    other = gp(
        "allow", "acme-research-dev", "anthropic", "--models", "claude-haiku-*,claude-sonnet-*", "--leaks", "report"
    )
    assert other.code == 2 and f"remove it first with gatepass disallow acme-research-dev {grant_id}" in other.err
    bad = gp("allow", "acme-research-dev", "anthropic", "--leaks", "ignore")
    assert bad.code == 2 and "'ignore' is not one of 'block', 'redact', 'report'" in bad.err
    ok = gp("check", "acme-research-dev", "anthropic", "--model", "claude-haiku-4-5", "--json")
    assert ok.code == 0 and json.loads(ok.out)["grant"] == grant_id
    denied = gp("check", "acme-research-dev", "anthropic", "--model", "claude-opus-4-1")
    assert denied.code == 1 and "model_not_allowed" in denied.out
    assert gp("disallow", "acme-research-dev", grant_id).code == 0
    assert json.loads(gp("grants", "acme-research-dev", "--json").out) == []


def test_http_grants_with_methods_and_paths(ready: Gp) -> None:
    gp = ready
    assert gp("upstream", "add", "gh", "--type", "github", "--base-url", "http://127.0.0.1:9").code == 0
    allowed = gp("allow", "acme-research-dev", "gh", "--methods", "get", "--paths", "/repos/acme/docs/**")
    assert allowed.code == 0, allowed
    assert gp("check", "acme-research-dev", "gh", "--method", "GET", "--path", "/repos/acme/docs/README").code == 0
    assert gp("check", "acme-research-dev", "gh", "--method", "DELETE", "--path", "/repos/acme/docs/x").code == 1
    models = gp("allow", "acme-research-dev", "gh", "--models", "x")
    assert models.code == 2 and "--models applies to LLM upstreams" in models.err


def test_bad_grant_input(ready: Gp) -> None:
    gp = ready
    cases = [
        (("allow", "acme-research-dev", "nowhere"), 1, "unknown upstream 'nowhere'"),
        (("allow", "ghost-bot-dev", "anthropic"), 1, "unknown agent"),
        (("allow", "acme-research-dev", "anthropic", "--paths", "v1/**"), 2, "start with /"),
        (("allow", "acme-research-dev", "anthropic", "--methods", "FETCH"), 2, "invalid HTTP method"),
        (("allow", "acme-research-dev", "anthropic", "--models", "claude [x]"), 2, "invalid model glob"),
        (("disallow", "acme-research-dev", "gr_nothere"), 1, "has no grant 'gr_nothere'"),
    ]
    for args, code, message in cases:
        result = gp(*args)
        assert (result.code, message in result.err, result.err.count("\n")) == (code, True, 1), (args, result)
    assert json.loads(gp("grants", "acme-research-dev", "--json").out) == []
