"""Spend thresholds per agent: at $X in a period, warn, stop (suspend) or revoke, once per period."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from gatepass.alerts.thresholds import Threshold
from gatepass.control.agents import get_agent
from gatepass.control.app import Session
from gatepass.errors import InvalidInputError, NotFoundError
from gatepass.store import Transaction

__all__ = ["add_alerts", "list_alerts", "remove_alert", "set_alerts"]


def _with_id(agent_id: str, threshold: Threshold) -> Threshold:
    """The stored id is derived from the agent and the rule, so an unchanged rule keeps its firings."""
    digest = hashlib.sha256(f"{agent_id}:{threshold}".encode()).hexdigest()[:16]
    return Threshold("al_" + digest, threshold.amount_micros, threshold.period, threshold.action)


def set_alerts(session: Session, agent_name: str, thresholds: Sequence[Threshold]) -> tuple[Threshold, ...]:
    """Make the agent's thresholds exactly these."""
    agent = get_agent(session.tx, agent_name)
    wanted: dict[str, Threshold] = {}
    for threshold in thresholds:
        if str(threshold) in wanted:
            raise InvalidInputError(f"the threshold {threshold} is given twice: keep one")
        wanted[str(threshold)] = _with_id(agent.id, threshold)
    current = session.tx.list_alerts(agent.id).get(agent.id, ())
    result = tuple(sorted(wanted.values(), key=lambda t: (t.amount_micros, t.id)))
    if {t.id for t in current} != {t.id for t in result}:
        session.tx.set_alerts(agent.id, result)
        session.record("alert.set", agent.name, {"thresholds": [str(t) for t in result]})
    return result


def add_alerts(session: Session, agent_name: str, thresholds: Sequence[Threshold]) -> tuple[Threshold, ...]:
    agent = get_agent(session.tx, agent_name)
    current = list(session.tx.list_alerts(agent.id).get(agent.id, ()))
    known = {str(t) for t in current}
    return set_alerts(session, agent_name, current + [t for t in thresholds if str(t) not in known])


def remove_alert(session: Session, agent_name: str, which: str) -> Threshold:
    """Remove one threshold, named by its id or its spelling (e.g. 50/month:stop)."""
    agent = get_agent(session.tx, agent_name)
    current = session.tx.list_alerts(agent.id).get(agent.id, ())
    for threshold in current:
        if which in (threshold.id, str(threshold)):
            set_alerts(session, agent_name, [t for t in current if t is not threshold])
            return threshold
    raise NotFoundError(f"agent {agent_name} has no threshold {which!r}: see gatepass alert list --agent {agent_name}")


def list_alerts(tx: Transaction, agent_name: str | None = None) -> dict[str, tuple[Threshold, ...]]:
    """agent name -> thresholds."""
    names = {a.id: a.name for a in tx.list_agents()}
    agent_id = None if agent_name is None else get_agent(tx, agent_name).id
    return {names[owner]: items for owner, items in tx.list_alerts(agent_id).items() if owner in names}
