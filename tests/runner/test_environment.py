"""The child's environment: allowlist, owner's extras, decoys, and gatepass's variables, in that order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gatepass.errors import InvalidInputError
from gatepass.model import AuthStyle, Upstream, UpstreamType
from gatepass.runner.environment import (
    RESERVED_NAMES,
    Endpoint,
    check_names,
    child_environment,
    gatepass_variables,
    parse_env_options,
    pick_upstreams,
)
from gatepass.sensitive import Secret
from tests.conftest import fake_secret

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def _upstream(name: str, kind: UpstreamType) -> Upstream:
    return Upstream(name, kind, "https://example.invalid", AuthStyle("bearer"), None, NOW)


def test_only_allowlisted_parent_variables_pass_and_gatepass_has_the_last_word() -> None:
    parent = {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LC_TIME": "C",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "AWS_SECRET_ACCESS_KEY": fake_secret(),
        "ANTHROPIC_API_KEY": fake_secret("sk-ant-"),
        "MY_SETTING": "1",
        "NOT_MINE": "2",
        "LCX": "not a locale variable",
    }
    env = child_environment(
        parent,
        passthrough=["MY_SETTING"],
        extra={"EXTRA": "e", "AWS_ACCESS_KEY_ID": "owner-chose-this"},
        planted={"AWS_ACCESS_KEY_ID": "decoy", "DATABASE_URL": "decoy-url"},
        gatepass={"ANTHROPIC_API_KEY": "gp_key", "GATEPASS_KEY": "gp_key"},
    )
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LC_TIME": "C",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "MY_SETTING": "1",
        "EXTRA": "e",
        "AWS_ACCESS_KEY_ID": "owner-chose-this",
        "DATABASE_URL": "decoy-url",
        "ANTHROPIC_API_KEY": "gp_key",
        "GATEPASS_KEY": "gp_key",
    }


def test_env_options_take_the_parents_value_or_the_given_one_and_skip_unset_names() -> None:
    parent = {"FROM_PARENT": "p", "EMPTY": ""}
    extra = parse_env_options(["FROM_PARENT", "SET=a=b", "EMPTY", "UNSET", "BLANK="], parent)
    assert extra == {"FROM_PARENT": "p", "SET": "a=b", "EMPTY": "", "BLANK": ""}


@pytest.mark.parametrize("name", [*sorted(RESERVED_NAMES), "GATEPASS_OTHER"])
def test_names_gatepass_sets_cannot_be_passed(name: str) -> None:
    value = fake_secret()
    with pytest.raises(InvalidInputError, match=f"--env names {name}, which gatepass run sets itself") as info:
        parse_env_options([f"{name}={value}"], {})
    assert value not in info.value.message


@pytest.mark.parametrize("name", ["", "1ABC", "A-B", "A B", "A.B"])
def test_malformed_names_are_refused_without_echoing_a_value(name: str) -> None:
    value = fake_secret()
    with pytest.raises(InvalidInputError, match="invalid environment variable name") as info:
        parse_env_options([f"{name}={value}"], {})
    assert value not in info.value.message
    with pytest.raises(InvalidInputError, match=r"in config.toml \[run\] env"):
        check_names([name], where="config.toml [run] env")


def test_each_type_points_at_the_upstream_named_like_it_else_the_first_by_name() -> None:
    upstreams = [
        _upstream("zeta", UpstreamType.ANTHROPIC),
        _upstream("anthropic", UpstreamType.ANTHROPIC),
        _upstream("oai-b", UpstreamType.OPENAI),
        _upstream("oai-a", UpstreamType.OPENAI),
        _upstream("gh", UpstreamType.GITHUB),
    ]
    chosen = pick_upstreams(upstreams)
    assert {k: v.name for k, v in chosen.items()} == {
        UpstreamType.ANTHROPIC: "anthropic",
        UpstreamType.OPENAI: "oai-a",
        UpstreamType.GITHUB: "gh",
    }
    assert {k: v.name for k, v in pick_upstreams(reversed(upstreams)).items()} == {k: v.name for k, v in chosen.items()}


def test_gatepass_variables_for_every_upstream_type() -> None:
    key = "gp_" + fake_secret("", 39)
    upstreams = [
        _upstream("anthropic", UpstreamType.ANTHROPIC),
        _upstream("openai", UpstreamType.OPENAI),
        _upstream("github", UpstreamType.GITHUB),
        _upstream("docs-api", UpstreamType.HTTP),
        _upstream("search", UpstreamType.HTTP),
    ]
    env = gatepass_variables(
        key=Secret(key), agent="acme-research-dev", endpoint=Endpoint("127.0.0.1", 8790), upstreams=upstreams
    )
    base = "http://127.0.0.1:8790"
    proxy = f"http://acme-research-dev:{key}@127.0.0.1:8790"
    assert env == {
        "GATEPASS_KEY": key,
        "GATEPASS_URL": base,
        "ANTHROPIC_BASE_URL": f"{base}/anthropic",
        "ANTHROPIC_API_KEY": key,
        "OPENAI_BASE_URL": f"{base}/openai/v1",
        "OPENAI_API_KEY": key,
        "GITHUB_API_URL": f"{base}/github",
        "GITHUB_TOKEN": key,
        "GH_TOKEN": key,
        "GATEPASS_DOCS_API_URL": f"{base}/docs-api",
        "GATEPASS_SEARCH_URL": f"{base}/search",
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "https_proxy": proxy,
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    assert set(env) - {"GATEPASS_DOCS_API_URL", "GATEPASS_SEARCH_URL"} <= RESERVED_NAMES


def test_an_agent_without_grants_gets_only_the_key_the_gateway_and_the_proxy() -> None:
    env = gatepass_variables(key=Secret("gp_x"), agent="a-b-dev", endpoint=Endpoint("::1", 9000), upstreams=[])
    assert env["GATEPASS_URL"] == "http://[::1]:9000"
    assert env["HTTPS_PROXY"] == "http://a-b-dev:gp_x@[::1]:9000"
    assert env["NO_PROXY"] == "::1"
    assert not any(name.startswith(("ANTHROPIC", "OPENAI", "GITHUB", "GH_")) for name in env)


@pytest.mark.parametrize(
    ("url", "host", "loopback"),
    [
        ("http://127.0.0.1:8790", "127.0.0.1", "127.0.0.1"),
        ("http://0.0.0.0:8790", "127.0.0.1", "127.0.0.1"),
        ("http://[::]:8790", "::1", "::1"),
        ("http://[::1]:8790", "::1", "::1"),
        ("http://10.1.2.3:8790", "10.1.2.3", None),
        ("http://gateway.internal:8790", "gateway.internal", None),
    ],
)
def test_endpoints_of_a_running_gateway(url: str, host: str, loopback: str | None) -> None:
    endpoint = Endpoint.from_url(url)
    assert (endpoint.host, endpoint.port, endpoint.loopback_address()) == (host, 8790, loopback)


def test_an_endpoint_without_a_port_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="no host or port"):
        Endpoint.from_url("http://127.0.0.1")
