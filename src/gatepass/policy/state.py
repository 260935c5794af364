"""Policy state as data: what the store holds and what a policy file wants, and the plan between them.

:func:`current_state` reads the store into a :class:`PolicyState`; :func:`document.load_policy`
builds one from ``gatepass.toml``. :func:`make_plan` lists the changes that turn one into the
other, and :func:`apply_plan` carries them out through the same functions the imperative commands
use, so both ways produce the same state and the same audit records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gatepass.alerts.thresholds import parse_thresholds
from gatepass.control import agents as agent_ops
from gatepass.control import alerts as alert_ops
from gatepass.control import egress as egress_ops
from gatepass.control import grants as grant_ops
from gatepass.control import keys as key_ops
from gatepass.control import upstreams as upstream_ops
from gatepass.control.app import Session
from gatepass.errors import ConflictError
from gatepass.model import NO_LIMITS, AuthStyle, KeyDefaults, PolicyMode, RateLimits, UpstreamType
from gatepass.store import Transaction
from gatepass.units import Budget, format_duration

__all__ = [
    "AgentSpec",
    "Change",
    "EgressSpec",
    "GrantSpec",
    "PolicyState",
    "UpstreamSpec",
    "apply_plan",
    "current_state",
    "make_plan",
]


@dataclass(frozen=True, slots=True)
class UpstreamSpec:
    name: str
    type: UpstreamType
    base_url: str
    auth: AuthStyle
    secret: str | None


@dataclass(frozen=True, slots=True, order=True)
class GrantSpec:
    """One grant; ``leaks`` is the leak guard's action (one of ``LEAK_ACTIONS``)."""

    upstream: str
    models: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    leaks: str = "block"

    def __str__(self) -> str:
        parts = [self.upstream]
        for label, values in (("models", self.models), ("methods", self.methods), ("paths", self.paths)):
            if values:
                parts.append(f"{label}={','.join(values)}")
        if self.leaks != "block":
            parts.append(f"leaks={self.leaks}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True, order=True)
class EgressSpec:
    """One host of an agent's egress allowlist; ``ports`` empty means 80 and 443."""

    host: str
    ports: tuple[int, ...] = ()

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host + (":" + ",".join(str(p) for p in self.ports) if self.ports else "")


@dataclass(frozen=True, slots=True)
class AgentSpec:
    name: str
    owner: str
    email: str
    description: str
    mode: PolicyMode
    budgets: tuple[Budget, ...]
    grants: frozenset[GrantSpec] = field(default_factory=frozenset)
    limits: RateLimits = NO_LIMITS
    alerts: frozenset[str] = frozenset()  # canonical thresholds, e.g. "50/month:stop"
    egress: frozenset[EgressSpec] = frozenset()


@dataclass(frozen=True, slots=True)
class PolicyState:
    upstreams: Mapping[str, UpstreamSpec]
    agents: Mapping[str, AgentSpec]
    key_defaults: KeyDefaults


def current_state(tx: Transaction) -> PolicyState:
    upstreams = {u.name: UpstreamSpec(u.name, u.type, u.base_url, u.auth, u.secret_name) for u in tx.list_upstreams()}
    grants_by_agent: dict[str, set[GrantSpec]] = {}
    for g in tx.list_grants():
        grants_by_agent.setdefault(g.agent_id, set()).add(GrantSpec(g.upstream, g.models, g.methods, g.paths, g.leaks))
    alerts = tx.list_alerts()
    egress: dict[str, set[EgressSpec]] = {}
    for rule in tx.list_egress_rules():
        egress.setdefault(rule.agent_id, set()).add(EgressSpec(rule.host, rule.ports))
    agents = {
        a.name: AgentSpec(
            a.name,
            a.owner,
            a.email,
            a.description,
            a.mode,
            a.budgets,
            frozenset(grants_by_agent.get(a.id, set())),
            a.limits,
            frozenset(str(t) for t in alerts.get(a.id, ())),
            frozenset(egress.get(a.id, ())),
        )
        for a in tx.list_agents()
    }
    return PolicyState(upstreams, agents, key_ops.get_key_defaults(tx))


@dataclass(frozen=True, slots=True)
class Change:
    """One step of a plan: ``op`` is + (add), ~ (change) or - (remove)."""

    op: str
    kind: str
    name: str
    detail: str
    payload: Any = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.op} {self.kind} {self.name}" + (f": {self.detail}" if self.detail else "")

    def as_json(self) -> dict[str, str]:
        return {
            "op": {"+": "add", "~": "change", "-": "remove"}[self.op],
            "kind": self.kind,
            "name": self.name,
            "detail": self.detail,
        }


def _budgets_text(budgets: tuple[Budget, ...]) -> str:
    return ", ".join(str(b) for b in budgets) or "none"


def _alerts_text(alerts: frozenset[str]) -> str:
    return ", ".join(sorted(alerts)) or "none"


def _diff_fields(old: object, new: object, names: tuple[str, ...]) -> list[str]:
    out = []
    for name in names:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            show = _budgets_text if name == "budgets" else _alerts_text if name == "alerts" else str
            out.append(f"{name} {show(before)} -> {show(after)}")
    return out


def make_plan(current: PolicyState, desired: PolicyState) -> list[Change]:
    """The ordered changes that turn ``current`` into ``desired``."""
    plan: list[Change] = []
    for name, spec in sorted(desired.upstreams.items()):
        have = current.upstreams.get(name)
        if have is None:
            plan.append(
                Change(
                    "+",
                    "upstream",
                    name,
                    f"{spec.type.value} {spec.base_url}" + (f", secret {spec.secret}" if spec.secret else ""),
                    spec,
                )
            )
        elif have.type != spec.type:
            raise ConflictError(
                f"upstream {name!r} is of type {have.type.value} in the store and {spec.type.value} "
                f"in the file: remove it first with gatepass upstream rm {name}, or keep its type"
            )
        elif have != spec:
            plan.append(
                Change("~", "upstream", name, "; ".join(_diff_fields(have, spec, ("base_url", "auth", "secret"))), spec)
            )
    for name, agent in sorted(desired.agents.items()):
        have_agent = current.agents.get(name)
        if have_agent is None:
            plan.append(
                Change(
                    "+",
                    "agent",
                    name,
                    f"owner {agent.owner}, budgets {_budgets_text(agent.budgets)}"
                    + (", report-only" if agent.mode is PolicyMode.REPORT else ""),
                    agent,
                )
            )
            plan.extend(Change("+", "grant", name, str(g), g) for g in sorted(agent.grants))
            plan.extend(Change("+", "egress", name, str(e), e) for e in sorted(agent.egress))
            continue
        fields = _diff_fields(
            have_agent, agent, ("owner", "email", "description", "mode", "budgets", "limits", "alerts")
        )
        if fields:
            plan.append(Change("~", "agent", name, "; ".join(fields), agent))
        plan.extend(Change("-", "grant", name, str(g), g) for g in sorted(have_agent.grants - agent.grants))
        plan.extend(Change("+", "grant", name, str(g), g) for g in sorted(agent.grants - have_agent.grants))
        plan.extend(Change("-", "egress", name, str(e), e) for e in sorted(have_agent.egress - agent.egress))
        plan.extend(Change("+", "egress", name, str(e), e) for e in sorted(agent.egress - have_agent.egress))
    for name in sorted(set(current.agents) - set(desired.agents)):
        plan.append(Change("-", "agent", name, "with its grants; its keys are revoked", None))
    for name in sorted(set(current.upstreams) - set(desired.upstreams)):
        plan.append(Change("-", "upstream", name, "", None))
    if current.key_defaults != desired.key_defaults:
        plan.append(
            Change(
                "~",
                "key-defaults",
                "keys",
                f"default TTL {format_duration(current.key_defaults.default_ttl)} -> "
                f"{format_duration(desired.key_defaults.default_ttl)}; max TTL "
                f"{format_duration(current.key_defaults.max_ttl)} -> "
                f"{format_duration(desired.key_defaults.max_ttl)}",
                desired.key_defaults,
            )
        )
    return plan


def _phase(change: Change) -> int:
    order = {
        ("+", "upstream"): 0,
        ("~", "upstream"): 0,
        ("+", "agent"): 1,
        ("~", "agent"): 1,
        ("-", "grant"): 2,
        ("-", "egress"): 2,
        ("+", "grant"): 3,
        ("+", "egress"): 3,
        ("-", "agent"): 4,
        ("-", "upstream"): 5,
        ("~", "key-defaults"): 6,
    }
    return order[(change.op, change.kind)]


def apply_plan(session: Session, plan: list[Change]) -> None:
    """Carry out a plan inside the caller's session (one transaction, one audit batch)."""
    for change in sorted(plan, key=_phase):
        _apply_one(session, change)


def _apply_one(session: Session, change: Change) -> None:
    spec = change.payload
    match (change.op, change.kind):
        case ("+", "upstream"):
            upstream_ops.add_upstream(
                session, spec.name, spec.type, base_url=spec.base_url, auth=spec.auth, secret_name=spec.secret
            )
        case ("~", "upstream"):
            upstream_ops.update_upstream(
                session,
                spec.name,
                base_url=spec.base_url,
                auth=spec.auth,
                secret_name=spec.secret,
                clear_secret=spec.secret is None,
            )
        case ("+", "agent"):
            agent_ops.create_agent(session, spec.name, **_agent_fields(spec))
            alert_ops.set_alerts(session, spec.name, parse_thresholds(sorted(spec.alerts)))
        case ("~", "agent"):
            agent_ops.update_agent(session, spec.name, **_agent_fields(spec))
            alert_ops.set_alerts(session, spec.name, parse_thresholds(sorted(spec.alerts)))
        case ("+", "grant"):
            grant_ops.add_grant(
                session,
                change.name,
                spec.upstream,
                models=spec.models,
                methods=spec.methods,
                paths=spec.paths,
                leaks=spec.leaks,
            )
        case ("-", "grant"):
            for grant in grant_ops.list_grants(session.tx, change.name):
                if GrantSpec(grant.upstream, grant.models, grant.methods, grant.paths, grant.leaks) == spec:
                    grant_ops.remove_grant(session, change.name, grant.id)
        case ("+", "egress"):
            egress_ops.allow_egress(session, change.name, [str(spec)])
        case ("-", "egress"):
            egress_ops.remove_egress(session, change.name, spec.host)
        case ("-", "agent"):
            agent_ops.delete_agent(session, change.name)
        case ("-", "upstream"):
            upstream_ops.remove_upstream(session, change.name)
        case ("~", "key-defaults"):
            key_ops.set_key_defaults(session, default_ttl=spec.default_ttl, max_ttl=spec.max_ttl)
        case _:  # pragma: no cover - make_plan makes no other change
            raise AssertionError(f"unknown change {change.op} {change.kind}")


def _agent_fields(spec: AgentSpec) -> dict[str, Any]:
    return {
        "owner": spec.owner,
        "email": spec.email,
        "description": spec.description,
        "budgets": spec.budgets,
        "mode": spec.mode,
        "limits": spec.limits,
    }
