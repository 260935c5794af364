"""``gatepass.toml``: policy as code. Parsed into a :class:`PolicyState`, every error names file and line.

Example::

    [keys]
    default_ttl = "1h"
    max_ttl = "30d"

    [upstreams.anthropic]
    type = "anthropic"
    secret = "anthropic-main"        # a name; the value goes in with `gatepass secret add`

    [agents.acme-research-dev]
    owner = "me@example.com"
    budgets = ["50/month", "5/day"]

    [[agents.acme-research-dev.grants]]
    upstream = "anthropic"
    models = ["claude-haiku-*"]
    leaks = "redact"                 # leak guard action: block (default), redact or report

Hosts an agent may reach through the egress proxy: ``egress = ["api.example.com", "*.pypi.org:443"]``
under its ``[agents.NAME]`` table (``HOST[:PORT[,PORT]]``, as for ``gatepass egress allow``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from gatepass.alerts.thresholds import parse_threshold
from gatepass.control.agents import agent_addresses, check_budgets, check_limits
from gatepass.control.egress import parse_rule
from gatepass.control.grants import GrantScope, check_leak_action, normalise_scope
from gatepass.control.upstreams import build_upstream, parse_type
from gatepass.credpatterns import find_credentials
from gatepass.errors import ConfigError, InvalidInputError
from gatepass.globs import parse_method, parse_model_glob, parse_path_glob
from gatepass.model import AuthStyle, KeyDefaults, PolicyMode, RateLimits
from gatepass.names import parse_agent_name
from gatepass.policy.state import AgentSpec, EgressSpec, GrantSpec, PolicyState, UpstreamSpec
from gatepass.tomlfile import config_error, load_toml, validate
from gatepass.units import parse_budget, parse_duration

__all__ = ["load_policy"]

_VALUE_KEYS = ("value", "api_key", "key", "token", "password", "credential")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Keys(_Strict):
    default_ttl: str | None = None
    max_ttl: str | None = None


class _Upstream(_Strict):
    type: str
    base_url: str | None = None
    auth: str | None = None
    secret: str | None = None


class _Grant(_Strict):
    upstream: str
    models: list[str] = []
    methods: list[str] = []
    paths: list[str] = []
    leaks: str = "block"


class _Agent(_Strict):
    owner: str
    email: str | None = None
    description: str = ""
    budgets: list[str] = []
    mode: Literal["enforce", "report"] = "enforce"
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    alerts: list[str] = []
    egress: list[str] = []
    grants: list[_Grant] = []


class _Policy(_Strict):
    keys: _Keys = _Keys()
    upstreams: dict[str, _Upstream] = {}
    agents: dict[str, _Agent] = {}


def load_policy(path: Path, environments: Sequence[str]) -> PolicyState:
    data, text = load_toml(path)
    found = find_credentials(text)
    if found:
        lineno, pattern = found[0]
        raise ConfigError(
            f"{path}:{lineno}: this looks like a credential ({pattern}); secret values never go in "
            'the policy file: name the secret (secret = "NAME") and store the value with '
            "gatepass secret add NAME --upstream UPSTREAM"
        )
    for name, table in (data.get("upstreams") or {}).items():
        for key in _VALUE_KEYS:
            if isinstance(table, dict) and key in table:
                raise config_error(
                    path,
                    text,
                    ("upstreams", name, key),
                    'secret values never go in the policy file: write secret = "NAME" and '
                    "store the value with gatepass secret add NAME --upstream " + name,
                )
    policy = validate(_Policy, data, path, text)

    @contextmanager
    def at(*loc: str | int) -> Iterator[None]:
        """Turn a validation error raised inside into one naming the file and line of ``loc``."""
        try:
            yield
        except InvalidInputError as exc:
            raise config_error(path, text, loc, exc.message) from None

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    upstreams: dict[str, UpstreamSpec] = {}
    for name, up in policy.upstreams.items():
        with at("upstreams", name, "type"):
            type_ = parse_type(up.type)
        with at("upstreams", name, "auth"):
            auth = None if up.auth is None else AuthStyle.parse(up.auth)
        with at("upstreams", name):
            built = build_upstream(
                name, type_, base_url=up.base_url, auth=auth, secret_name=up.secret, created_at=epoch
            )
        upstreams[name] = UpstreamSpec(built.name, built.type, built.base_url, built.auth, built.secret_name)

    agents: dict[str, AgentSpec] = {}
    for name, agent in policy.agents.items():
        with at("agents", name):
            parse_agent_name(name, environments)
        with at("agents", name, "owner"):
            owner, email = agent_addresses(agent.owner, agent.email, name)
        budgets = []
        for i, text_budget in enumerate(agent.budgets):
            with at("agents", name, "budgets", i):
                budgets.append(parse_budget(text_budget))
        with at("agents", name, "budgets"):
            checked_budgets = check_budgets(budgets)
        grants: dict[tuple[str, GrantScope], GrantSpec] = {}
        for i, grant in enumerate(agent.grants):
            upstream = upstreams.get(grant.upstream)
            if upstream is None:
                raise config_error(
                    path,
                    text,
                    ("agents", name, "grants", i, "upstream"),
                    f"unknown upstream {grant.upstream!r}: declare it under [upstreams.{grant.upstream}]",
                )
            for field, parse in (("models", parse_model_glob), ("methods", parse_method), ("paths", parse_path_glob)):
                for j, value in enumerate(getattr(grant, field)):
                    with at("agents", name, "grants", i, field, j):
                        parse(value)
            with at("agents", name, "grants", i):
                scope = normalise_scope(upstream.type, grant.models, grant.methods, grant.paths)
            with at("agents", name, "grants", i, "leaks"):
                spec = GrantSpec(upstream.name, *scope, check_leak_action(grant.leaks))
            first = grants.setdefault((upstream.name, scope), spec)
            if first.leaks != spec.leaks:
                raise config_error(
                    path,
                    text,
                    ("agents", name, "grants", i),
                    f"this grant is given twice, with leaks = {first.leaks!r} and {spec.leaks!r}: keep one",
                )
        with at("agents", name):
            limits = check_limits(RateLimits(agent.rpm, agent.tpm, agent.concurrency))
        alerts: set[str] = set()
        for i, text_alert in enumerate(agent.alerts):
            with at("agents", name, "alerts", i):
                threshold = str(parse_threshold(text_alert))
                if threshold in alerts:
                    raise InvalidInputError(f"the threshold {threshold} is given twice: keep one")
                alerts.add(threshold)
        egress: dict[str, EgressSpec] = {}
        for i, text_rule in enumerate(agent.egress):
            with at("agents", name, "egress", i):
                host, ports = parse_rule(text_rule)
                if host in egress:
                    raise InvalidInputError(f"the host {host} is given twice: list all its ports in one entry")
                egress[host] = EgressSpec(host, ports)
        agents[name] = AgentSpec(
            name,
            owner,
            email,
            agent.description.strip(),
            PolicyMode(agent.mode),
            checked_budgets,
            frozenset(grants.values()),
            limits,
            frozenset(alerts),
            frozenset(egress.values()),
        )

    defaults = KeyDefaults()
    if policy.keys.default_ttl:
        with at("keys", "default_ttl"):
            defaults = replace(defaults, default_ttl=parse_duration(policy.keys.default_ttl, what="default_ttl"))
    if policy.keys.max_ttl:
        with at("keys", "max_ttl"):
            defaults = replace(defaults, max_ttl=parse_duration(policy.keys.max_ttl, what="max_ttl"))
    if defaults.default_ttl > defaults.max_ttl:
        raise config_error(path, text, ("keys", "default_ttl"), "the default TTL is longer than max_ttl: lower it")
    return PolicyState(upstreams, agents, defaults)
