"""gatepass.toml: parsing, and errors that name the file, the line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatepass.errors import ConfigError
from gatepass.model import PolicyMode, UpstreamType
from gatepass.names import DEFAULT_ENVIRONMENTS
from gatepass.policy.document import load_policy
from gatepass.policy.state import GrantSpec
from gatepass.units import parse_budget
from tests.conftest import fake_secret

GOOD = """\
[keys]
default_ttl = "2h"
max_ttl = "7d"

[upstreams.anthropic]
type = "anthropic"
secret = "anthropic-main"

[upstreams.docs]
type = "http"
base_url = "https://docs.example.com/api/"
auth = "header:X-Api-Key"

[agents.acme-research-dev]
owner = "me@example.com"
budgets = ["50/month", "5/day"]
mode = "report"

[[agents.acme-research-dev.grants]]
upstream = "anthropic"
models = ["claude-sonnet-*", "claude-haiku-*"]

[[agents.acme-research-dev.grants]]
upstream = "docs"
methods = ["get"]
paths = ["/v1/**"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gatepass.toml"
    path.write_text(text)
    return path


def test_good_file(tmp_path: Path) -> None:
    state = load_policy(write(tmp_path, GOOD), DEFAULT_ENVIRONMENTS)
    assert state.key_defaults.default_ttl.total_seconds() == 7200
    anthropic = state.upstreams["anthropic"]
    assert (anthropic.type, anthropic.base_url, str(anthropic.auth)) == (
        UpstreamType.ANTHROPIC,
        "https://api.anthropic.com",
        "header:x-api-key",
    )
    assert state.upstreams["docs"].base_url == "https://docs.example.com/api"
    agent = state.agents["acme-research-dev"]
    assert agent.email == "me+acme-research-dev@example.com"
    assert agent.mode is PolicyMode.REPORT
    assert agent.budgets == (parse_budget("5/day"), parse_budget("50/month"))
    assert agent.grants == {
        GrantSpec("anthropic", ("claude-haiku-*", "claude-sonnet-*")),
        GrantSpec("docs", (), ("GET",), ("/v1/**",)),
    }


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (('budgets = ["50/month", "5/day"]', 'budgets = ["50/moth"]'), 16, "unknown period"),
        (('owner = "me@example.com"', 'owner = "nobody"'), 15, "invalid owner address"),
        (('owner = "me@example.com"', 'ownr = "me@example.com"'), 15, "unknown key 'ownr'"),
        (("acme-research-dev", "AcmeBot"), 14, "e.g. acme-research-dev"),
        (('upstream = "docs"', 'upstream = "dcos"'), 24, "unknown upstream 'dcos'"),
        (('paths = ["/v1/**"]', 'paths = ["v1/**"]'), 26, "start with /"),
        (
            ('paths = ["/v1/**"]', 'paths = ["/v1/**"]\nleaks = "drop"'),
            27,
            "grants[1].leaks: leak action 'drop' is not one of block, redact, report",
        ),
        (('type = "http"', 'type = "ftp"'), 10, "invalid upstream type"),
        (('max_ttl = "7d"', 'max_ttl = "7 days"'), 3, "invalid max_ttl"),
        (('max_ttl = "7d"', 'max_ttl = "1h"'), 2, "longer than max_ttl"),
        (('mode = "report"', 'mode = "loud"'), 17, "'enforce' or 'report'"),
        (("[keys]", "[keys"), 1, "invalid TOML"),
        (('secret = "anthropic-main"', 'value = "anything"'), 7, "secret values never go in the policy file"),
    ],
)
def test_errors_name_file_line_and_fix(tmp_path: Path, edit: tuple[str, str], line: int, message: str) -> None:
    assert edit[0] in GOOD
    path = write(tmp_path, GOOD.replace(edit[0], edit[1]))
    with pytest.raises(ConfigError) as info:
        load_policy(path, DEFAULT_ENVIRONMENTS)
    assert info.value.message.startswith(f"{path}:{line}: "), info.value.message
    assert message in info.value.message


def test_leak_action_per_grant(tmp_path: Path) -> None:
    text = GOOD.replace('paths = ["/v1/**"]', 'paths = ["/v1/**"]\nleaks = "redact"')
    grants = load_policy(write(tmp_path, text), DEFAULT_ENVIRONMENTS).agents["acme-research-dev"].grants
    assert {(g.upstream, g.leaks) for g in grants} == {("anthropic", "block"), ("docs", "redact")}


def test_one_grant_with_two_leak_actions_is_refused(tmp_path: Path) -> None:
    docs = GOOD[GOOD.index('[[agents.acme-research-dev.grants]]\nupstream = "docs"') :]
    path = write(tmp_path, f'{GOOD}\n{docs}leaks = "report"\n')
    with pytest.raises(ConfigError) as info:
        load_policy(path, DEFAULT_ENVIRONMENTS)
    assert info.value.message == (
        f"{path}:28: agents.acme-research-dev.grants[2]: this grant is given twice, "
        "with leaks = 'block' and 'report': keep one"
    )


def test_credential_values_are_refused(tmp_path: Path) -> None:
    leaked = fake_secret("sk-ant-api03-", 40)
    path = write(tmp_path, GOOD + f"\n# key: {leaked}\n")
    with pytest.raises(ConfigError, match="looks like a credential") as info:
        load_policy(path, DEFAULT_ENVIRONMENTS)
    assert leaked not in info.value.message
    assert f"{path}:28:" in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_policy(tmp_path / "nope.toml", DEFAULT_ENVIRONMENTS)
