"""Agent accounts: an identity of its own per agent, with an owner, a contact address and a lifecycle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from gatepass.control.app import Session
from gatepass.errors import ConflictError, InvalidInputError, NotFoundError
from gatepass.keyformat import new_id
from gatepass.model import NO_LIMITS, Agent, AgentStatus, PolicyMode, RateLimits
from gatepass.names import parse_agent_name, parse_email
from gatepass.store import Transaction
from gatepass.units import Budget

__all__ = [
    "agent_addresses",
    "check_budgets",
    "check_limits",
    "create_agent",
    "default_agent_email",
    "delete_agent",
    "get_agent",
    "kill_agent",
    "resume_agent",
    "suspend_agent",
    "update_agent",
]


def get_agent(tx: Transaction, name: str) -> Agent:
    agent = tx.get_agent(name)
    if agent is None:
        raise NotFoundError(f"unknown agent {name!r}: see gatepass agent list")
    return agent


def default_agent_email(owner: str, agent_name: str) -> str:
    """The owner's address with the agent's name as a plus tag: mail reaches the owner, the identity differs."""
    local, _, domain = owner.rpartition("@")
    return f"{local}+{agent_name}@{domain}"


def check_budgets(budgets: Sequence[Budget]) -> tuple[Budget, ...]:
    seen: set[str] = set()
    for budget in budgets:
        if budget.period.value in seen:
            raise InvalidInputError(f"two budgets for the period {budget.period.value!r}: keep one")
        seen.add(budget.period.value)
    return tuple(sorted(budgets, key=lambda b: ["day", "week", "month", "total"].index(b.period.value)))


def check_limits(limits: RateLimits) -> RateLimits:
    for kind, value in (("rpm", limits.rpm), ("tpm", limits.tpm), ("concurrency", limits.concurrency)):
        if value is not None and not 1 <= value <= 1_000_000_000:
            raise InvalidInputError(f"invalid --{kind} {value}: give a whole number of at least 1 (or leave it out)")
    return limits


def agent_addresses(owner: str, email: str | None, name: str) -> tuple[str, str]:
    owner = parse_email(owner, what="owner address")
    address = parse_email(email, what="agent address") if email else default_agent_email(owner, name)
    if address.casefold() == owner.casefold():
        raise InvalidInputError(
            f"the agent's address {address} is its owner's: give the agent an address of its "
            f"own with --email (or leave it out for {default_agent_email(owner, name)})"
        )
    return owner, address


def _budget_meta(budgets: Sequence[Budget]) -> list[str]:
    return [str(b) for b in budgets]


def create_agent(
    session: Session,
    name: str,
    *,
    owner: str,
    email: str | None = None,
    description: str = "",
    budgets: Sequence[Budget] = (),
    mode: PolicyMode = PolicyMode.ENFORCE,
    limits: RateLimits = NO_LIMITS,
) -> Agent:
    parse_agent_name(name, session.app.config.agents.environments)
    owner, address = agent_addresses(owner, email, name)
    if session.tx.get_agent(name) is not None:
        raise ConflictError(f"agent {name!r} already exists: see gatepass agent show {name}")
    agent = Agent(
        id=new_id("ag_"),
        name=name,
        owner=owner,
        email=address,
        description=description.strip(),
        status=AgentStatus.ACTIVE,
        mode=mode,
        created_at=session.now,
        updated_at=session.now,
        budgets=check_budgets(budgets),
        limits=check_limits(limits),
    )
    session.tx.put_agent(agent)
    session.record(
        "agent.create",
        name,
        {
            "owner": owner,
            "email": address,
            "budgets": _budget_meta(agent.budgets),
            "mode": mode.value,
            "limits": dict(agent.limits.items()),
        },
    )
    return agent


def update_agent(
    session: Session,
    name: str,
    *,
    owner: str | None = None,
    email: str | None = None,
    description: str | None = None,
    budgets: Sequence[Budget] | None = None,
    mode: PolicyMode | None = None,
    limits: RateLimits | None = None,
) -> Agent:
    current = get_agent(session.tx, name)
    new_owner, new_email = agent_addresses(owner or current.owner, email or current.email, name)
    if owner and not email and current.email == default_agent_email(current.owner, name):
        new_email = default_agent_email(new_owner, name)  # a derived address follows its owner
    updated = replace(
        current,
        owner=new_owner,
        email=new_email,
        description=current.description if description is None else description.strip(),
        budgets=current.budgets if budgets is None else check_budgets(budgets),
        mode=mode or current.mode,
        limits=current.limits if limits is None else check_limits(limits),
    )
    if updated == current:
        return current
    updated = replace(updated, updated_at=session.now)
    changes: dict[str, object] = {}
    for field in ("owner", "email", "description", "mode"):
        if getattr(updated, field) != getattr(current, field):
            changes[field] = str(getattr(updated, field))
    if updated.budgets != current.budgets:
        changes["budgets"] = _budget_meta(updated.budgets)
    if updated.limits != current.limits:
        changes["limits"] = dict(updated.limits.items())
    session.tx.put_agent(updated)
    session.record("agent.update", name, changes)
    return updated


def _set_status(session: Session, agent: Agent, status: AgentStatus, reason: str | None) -> Agent:
    updated = replace(agent, status=status, status_reason=reason, updated_at=session.now)
    session.tx.put_agent(updated)
    return updated


def suspend_agent(session: Session, name: str, *, reason: str = "suspended by its owner") -> Agent:
    agent = get_agent(session.tx, name)
    if agent.status is AgentStatus.SUSPENDED:
        return agent
    session.record("agent.suspend", name, {"reason": reason})
    return _set_status(session, agent, AgentStatus.SUSPENDED, reason)


def resume_agent(session: Session, name: str) -> Agent:
    agent = get_agent(session.tx, name)
    if agent.status is AgentStatus.ACTIVE:
        return agent
    session.record("agent.resume", name)
    return _set_status(session, agent, AgentStatus.ACTIVE, None)


def _revoke_all_keys(session: Session, agent: Agent, reason: str) -> list[str]:
    key_ids = [k.id for k in session.tx.list_keys(agent.id)]
    revoked = session.tx.revoke_keys(key_ids, session.now, reason)
    for key_id in revoked:
        session.record("key.revoke", key_id, {"agent": agent.name, "reason": reason})
    return revoked


def kill_agent(session: Session, name: str, *, reason: str = "revoked by its owner") -> tuple[Agent, list[str]]:
    """The kill switch: suspend the agent and revoke every key it holds, at once."""
    agent = get_agent(session.tx, name)
    revoked = _revoke_all_keys(session, agent, reason)
    session.record("agent.revoke", name, {"reason": reason, "keys_revoked": revoked})
    return _set_status(session, agent, AgentStatus.SUSPENDED, reason), revoked


def delete_agent(session: Session, name: str) -> list[str]:
    """Delete an agent with its grants and keys (revoked first, so the audit log shows each)."""
    agent = get_agent(session.tx, name)
    revoked = _revoke_all_keys(session, agent, "agent deleted")
    grants = [g.id for g in session.tx.list_grants(agent.id)]
    session.tx.delete_agent(agent.id)
    session.record("agent.delete", name, {"keys_revoked": revoked, "grants_removed": grants})
    return revoked
