"""Budget counters: reserve the worst case before forwarding, settle to the real cost after.

A budget line is one (agent or key, period, start of the period). A reservation must fit every
line a request is charged to (the agent's budgets and the key's) at once: for each line,
``spent + reserved + amount <= limit``. In one gateway process all of this runs on the event loop
with no await between the check and the update, so no interleaving can overshoot a budget;
replicas share counters in Redis (a later backend of the same interface).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from gatepass.units import Period

__all__ = ["BudgetDenied", "Counters", "Line", "LineTotals", "MemoryCounters", "Reservation"]


class Line(NamedTuple):
    """One budget line: ``scope`` is "agent" or "key"; ``start`` is the start of the UTC period.
    (A named tuple: it is made and hashed on every request.)"""

    scope: str
    owner_id: str
    period: Period
    start: datetime


@dataclass(frozen=True, slots=True)
class LineTotals:
    spent: int
    reserved: int


class Reservation:
    """Money held for one request on each of its lines until it is settled or released.

    (A plain class: one is made per request; see :class:`~gatepass.dataplane.exchange.Exchange`.)"""

    __slots__ = ("amount", "done", "lines")

    def __init__(self, lines: tuple[Line, ...], amount: int) -> None:
        self.lines = lines
        self.amount = amount
        self.done = False

    def __repr__(self) -> str:
        return f"Reservation({self.amount} micro-USD on {len(self.lines)} lines, done={self.done})"


@dataclass(frozen=True, slots=True)
class BudgetDenied:
    """Why a reservation did not fit: the first line that would overflow."""

    line: Line
    limit: int
    spent: int
    reserved: int
    needed: int


@dataclass(slots=True)
class _Totals:
    spent: int = 0
    reserved: int = 0


class Counters(abc.ABC):
    """Spend and reservations per budget line."""

    @abc.abstractmethod
    def reserve(
        self, charged: Sequence[Line], limits: Sequence[tuple[Line, int]], amount: int
    ) -> Reservation | BudgetDenied:
        """Hold ``amount`` on every line in ``charged`` if each limited line still fits it."""

    @abc.abstractmethod
    def settle(self, reservation: Reservation, actual: int) -> None:
        """Turn a reservation into spend of ``actual`` (the provider's reported cost)."""

    @abc.abstractmethod
    def release(self, reservation: Reservation) -> None:
        """Give a reservation back: the request cost nothing."""

    @abc.abstractmethod
    def add_spend(self, lines: Iterable[Line], amount: int) -> None:
        """Record spend without a reservation (loading persisted spend at start-up)."""

    @abc.abstractmethod
    def totals(self, line: Line) -> LineTotals: ...


class MemoryCounters(Counters):
    """In-process counters: the default, for the one gateway process that owns a home."""

    def __init__(self) -> None:
        self._lines: dict[Line, _Totals] = {}

    def reserve(
        self, charged: Sequence[Line], limits: Sequence[tuple[Line, int]], amount: int
    ) -> Reservation | BudgetDenied:
        lines = self._lines
        for line, limit in limits:
            totals = lines.get(line)
            spent, reserved = (totals.spent, totals.reserved) if totals else (0, 0)
            if spent + reserved + amount > limit:
                return BudgetDenied(line, limit, spent, reserved, amount)
        for line in charged:
            totals = lines.get(line)
            if totals is None:
                totals = lines[line] = _Totals()
            totals.reserved += amount
        return Reservation(tuple(charged), amount)

    def settle(self, reservation: Reservation, actual: int) -> None:
        if reservation.done:
            return
        reservation.done = True
        lines, amount = self._lines, reservation.amount
        for line in reservation.lines:
            totals = lines.get(line)
            if totals is None:
                totals = lines[line] = _Totals()
            totals.reserved -= amount
            totals.spent += actual

    def release(self, reservation: Reservation) -> None:
        self.settle(reservation, 0)

    def add_spend(self, lines: Iterable[Line], amount: int) -> None:
        for line in lines:
            self._lines.setdefault(line, _Totals()).spent += amount

    def totals(self, line: Line) -> LineTotals:
        totals = self._lines.get(line)
        return LineTotals(totals.spent, totals.reserved) if totals else LineTotals(0, 0)

    def prune(self, keep_since: datetime) -> int:
        """Forget lines of periods that started before ``keep_since`` and hold nothing reserved."""
        stale = [
            line
            for line, t in self._lines.items()
            if line.start < keep_since and t.reserved == 0 and line.period is not Period.TOTAL
        ]
        for line in stale:
            del self._lines[line]
        return len(stale)
