"""gatepass upstream ...: presets, generic http upstreams, and what they refuse."""

import json

from tests.conftest import Gp, fake_secret


def test_presets_and_http_upstreams(gp: Gp) -> None:
    assert gp("init").code == 0
    assert gp("upstream", "add", "openai", "--type", "openai", "--base-url", "http://127.0.0.1:9999/").code == 0
    assert gp("upstream", "add", "gh", "--type", "github").code == 0
    added = gp(
        "upstream",
        "add",
        "docs",
        "--type",
        "http",
        "--base-url",
        "https://docs.example.com/api",
        "--auth",
        "header:X-Api-Key",
        "--secret",
        "docs-token",
    )
    assert added.code == 0 and "gatepass secret add docs-token --upstream docs" in added.err
    listed = {u["name"]: u for u in json.loads(gp("upstream", "list", "--json").out)}
    assert (listed["openai"]["base_url"], listed["openai"]["auth"]) == ("http://127.0.0.1:9999", "bearer")
    assert (listed["gh"]["base_url"], listed["gh"]["auth"]) == ("https://api.github.com", "bearer")
    assert (listed["docs"]["auth"], listed["docs"]["secret_status"]) == ("header:X-Api-Key", "missing")
    assert gp("secret", "add", "docs-token", "--upstream", "docs", input=fake_secret()).code == 0
    assert json.loads(gp("upstream", "list", "--json").out)[0]["secret_status"] == "present"
    assert gp("upstream", "update", "docs", "--base-url", "http://127.0.0.1:8000").code == 0
    assert gp("upstream", "rm", "gh").code == 0
    assert sorted(u["name"] for u in json.loads(gp("upstream", "list", "--json").out)) == ["docs", "openai"]


def test_bad_upstream_input(gp: Gp) -> None:
    assert gp("init").code == 0
    assert gp("secret", "add", "oa", "--upstream", "openai", input=fake_secret()).code == 0
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com").code == 0
    assert gp("allow", "acme-research-dev", "openai").code == 0
    before = gp("upstream", "list", "--json").out
    cases = [
        (("upstream", "add", "x", "--type", "http"), 2, "needs a base URL"),
        (("upstream", "add", "x", "--type", "ftp"), 2, "Invalid value for '--type'"),
        (("upstream", "add", "x", "--type", "http", "--base-url", "ftp://h"), 2, "https://host"),
        (("upstream", "add", "x", "--type", "http", "--base-url", "https://u:p@h"), 2, "credentials do not belong"),
        (("upstream", "add", "x", "--type", "http", "--base-url", "https://h:99999"), 2, "port"),
        (("upstream", "add", "x", "--type", "http", "--base-url", "https://h", "--auth", "digest"), 2, "auth style"),
        (("upstream", "add", "x", "--type", "anthropic", "--auth", "bearer"), 2, "use type http"),
        (("upstream", "add", "X!", "--type", "openai"), 2, "invalid upstream name"),
        (("upstream", "add", "openai", "--type", "openai"), 1, "already exists"),
        (("upstream", "add", "y", "--type", "openai", "--secret", "oa"), 1, "belongs to upstream 'openai'"),
        (("upstream", "rm", "openai"), 1, "still granted to acme-research-dev"),
        (("upstream", "update", "nowhere", "--base-url", "https://h"), 1, "unknown upstream"),
    ]
    for args, code, message in cases:
        result = gp(*args)
        assert (result.code, message in result.err, result.err.count("\n")) == (code, True, 1), (args, result)
    assert gp("upstream", "list", "--json").out == before
