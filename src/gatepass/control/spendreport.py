"""Spend against budgets, per agent and key and per UTC period: for ``gatepass spend`` and the admin API.

The running gateway answers from its live counters (reservations included); without a gateway the
figures come from the store's spend lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from gatepass.metering.counters import Line, LineTotals
from gatepass.model import Agent, AnyKey
from gatepass.store.interface import SpendRow
from gatepass.units import Budget, Period, format_usd, period_start

__all__ = ["spend_report", "store_totals"]

Totals = Callable[[Line], LineTotals]


def _periods(
    scope: str, owner_id: str, budgets: Sequence[Budget], starts: dict[Period, datetime], totals: Totals
) -> list[dict[str, Any]]:
    limit = {b.period: b.amount_micros for b in budgets}
    rows = []
    for period, start in starts.items():
        got = totals(Line(scope, owner_id, period, start))
        budget = limit.get(period)
        rows.append(
            {
                "period": period.value,
                "start": start.isoformat().replace("+00:00", "Z"),
                "spent_micros": got.spent,
                "reserved_micros": got.reserved,
                "budget_micros": budget,
                "left_micros": None if budget is None else max(0, budget - got.spent - got.reserved),
                "spent": format_usd(got.spent),
                "budget": None if budget is None else format_usd(budget),
            }
        )
    return rows


def spend_report(
    agents: Sequence[Agent], keys: Sequence[AnyKey], now: datetime, totals: Totals, *, source: str
) -> dict[str, Any]:
    starts = {p: period_start(p, now) for p in Period}
    by_agent: dict[str, list[AnyKey]] = {}
    for key in keys:
        by_agent.setdefault(key.agent_id, []).append(key)
    return {
        "source": source,
        "at": now.isoformat().replace("+00:00", "Z"),
        "agents": [
            {
                "agent": agent.name,
                "status": agent.status.value,
                "periods": _periods("agent", agent.id, agent.budgets, starts, totals),
                "keys": [
                    {"key": key.id, "periods": _periods("key", key.id, key.budgets, starts, totals)}
                    for key in by_agent.get(agent.id, [])
                    if key.budgets
                ],
            }
            for agent in agents
        ],
    }


def store_totals(rows: Iterable[SpendRow]) -> Totals:
    """Totals from the store's spend in the current periods (``Transaction.current_spend``)."""
    found = {Line(r.scope, r.owner_id, r.period, r.period_start): r.micros for r in rows}

    def totals(line: Line) -> LineTotals:
        return LineTotals(found.get(line, 0), 0)

    return totals
