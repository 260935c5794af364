"""Budget counters: reserve the worst case before forwarding, settle to the real cost after.

A budget line is one (agent or key, period, start of the period). A request is charged to its
agent's lines and its key's lines of every period, and a reservation must fit each line that a
budget limits (the agent's budgets and the key's) at once: ``spent + reserved + amount <= limit``.
In one gateway process all of this runs on the event loop with no await between the check and the
update, so no interleaving can overshoot a budget; replicas would share counters in Redis (a later
backend of the same interface).

Memory: the counters hold one slot per agent and per key in use, not one entry per line. A slot is
an ``array`` of machine integers (the UTC day it is current for, then the spent and the reserved
amount of each period): about 140 bytes, against some 1,600 bytes for eight lines held as objects.
A slot only ever holds the periods that contain its day. When the day changes, the slot rolls
forward the first time it is used: each period that started anew begins at zero, the others keep
their totals. A reservation made before the roll settles into the periods it was made in that are
still current; its spend in a period that has ended only goes to the store (see
:mod:`gatepass.dataplane.spend`), which keeps every period's total.
"""

from __future__ import annotations

import abc
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final, NamedTuple

from gatepass.units import Budget, Period, period_start

__all__ = [
    "PERIODS",
    "BudgetDenied",
    "Counters",
    "Line",
    "LineTotals",
    "MemoryCounters",
    "Reservation",
    "day_of",
    "period_starts",
]

PERIODS: Final = tuple(Period)
_N: Final = len(PERIODS)
_INDEX: Final = {period: i for i, period in enumerate(PERIODS)}
# A slot: [day, spent of each period..., reserved of each period...]
_SPENT: Final = 1
_RESERVED: Final = 1 + _N
_BLANK: Final = array("q", [0] * (1 + 2 * _N))


class Line(NamedTuple):
    """One budget line: ``scope`` is "agent" or "key"; ``start`` is the start of the UTC period."""

    scope: str
    owner_id: str
    period: Period
    start: datetime


@dataclass(frozen=True, slots=True)
class LineTotals:
    spent: int
    reserved: int


def day_of(now: datetime) -> int:
    """The UTC day that contains ``now``, as a proleptic Gregorian ordinal."""
    if now.tzinfo is not UTC:
        now = now.astimezone(UTC)
    return now.toordinal()


@lru_cache(maxsize=64)
def period_starts(day: int) -> tuple[datetime, ...]:
    """The start of each period (in :data:`PERIODS` order) that contains ``day``."""
    moment = datetime.fromordinal(day).replace(tzinfo=UTC)
    return tuple(period_start(period, moment) for period in PERIODS)


class Reservation:
    """Money held for one request on its agent's and its key's lines until it is settled or released.

    ``day`` is the UTC day whose periods it was made in.
    (A plain class: one is made per request; see :class:`~gatepass.dataplane.exchange.Exchange`.)"""

    __slots__ = ("agent", "amount", "day", "done", "key")

    def __init__(self, agent: array[int], key: array[int], day: int, amount: int) -> None:
        self.agent = agent
        self.key = key
        self.day = day
        self.amount = amount
        self.done = False

    def __repr__(self) -> str:
        return f"Reservation({self.amount} micro-USD, day {self.day}, done={self.done})"


@dataclass(frozen=True, slots=True)
class BudgetDenied:
    """Why a reservation did not fit: the first line that would overflow."""

    line: Line
    limit: int
    spent: int
    reserved: int
    needed: int


class Counters(abc.ABC):
    """Spend and reservations per budget line, for the periods current at the latest ``now`` seen."""

    @abc.abstractmethod
    def reserve(
        self,
        agent_id: str,
        agent_budgets: Sequence[Budget],
        key_id: str,
        key_budgets: Sequence[Budget],
        amount: int,
        now: datetime,
    ) -> Reservation | BudgetDenied:
        """Hold ``amount`` on the agent's and the key's lines if every budget of either still fits it."""

    @abc.abstractmethod
    def settle(self, reservation: Reservation, actual: int) -> None:
        """Turn a reservation into spend of ``actual`` (the provider's reported cost)."""

    @abc.abstractmethod
    def release(self, reservation: Reservation) -> None:
        """Give a reservation back: the request cost nothing."""

    @abc.abstractmethod
    def add_spend(self, line: Line, amount: int, now: datetime) -> None:
        """Record spend without a reservation (loading persisted spend at start-up). A line of a
        period that no longer contains ``now`` is ignored."""

    @abc.abstractmethod
    def totals(self, line: Line, now: datetime) -> LineTotals:
        """A line's totals; zero for a line of a period that does not contain ``now``."""

    @abc.abstractmethod
    def spent(self, scope: str, owner_id: str, now: datetime) -> Mapping[Period, int]:
        """What one agent or key has spent in each period that contains ``now``."""

    @abc.abstractmethod
    def forget(self, scope: str, owner_ids: Iterable[str]) -> None:
        """Drop what is held for agents or keys that are gone or can no longer be used (their spend
        is in the store). A reservation still open on one of them settles as usual."""


class MemoryCounters(Counters):
    """In-process counters: the default, for the one gateway process that owns a home."""

    def __init__(self) -> None:
        self._agents: dict[str, array[int]] = {}
        self._keys: dict[str, array[int]] = {}
        self._today = 0  # the latest day seen: slots roll forward to it, never back

    def _advance(self, now: datetime) -> int:
        day = day_of(now)
        if day > self._today:
            self._today = day
        return self._today

    def _slot(self, slots: dict[str, array[int]], owner_id: str, today: int) -> array[int]:
        slot = slots.get(owner_id)
        if slot is None:
            slot = slots[owner_id] = array("q", _BLANK)
            slot[0] = today
        elif slot[0] != today:
            _roll(slot, today)
        return slot

    def reserve(
        self,
        agent_id: str,
        agent_budgets: Sequence[Budget],
        key_id: str,
        key_budgets: Sequence[Budget],
        amount: int,
        now: datetime,
    ) -> Reservation | BudgetDenied:
        today = self._advance(now)
        agent = self._slot(self._agents, agent_id, today)
        key = self._slot(self._keys, key_id, today)
        over = _over(agent, agent_budgets, amount)
        if over is not None:
            return _denied("agent", agent_id, agent, over, amount)
        over = _over(key, key_budgets, amount)
        if over is not None:
            return _denied("key", key_id, key, over, amount)
        for i in range(_RESERVED, _RESERVED + _N):
            agent[i] += amount
            key[i] += amount
        return Reservation(agent, key, today, amount)

    def settle(self, reservation: Reservation, actual: int) -> None:
        if reservation.done:
            return
        reservation.done = True
        amount, day = reservation.amount, reservation.day
        for slot in (reservation.agent, reservation.key):
            if slot[0] == day:
                for i in range(_N):
                    slot[_RESERVED + i] -= amount
                    slot[_SPENT + i] += actual
            else:  # the slot rolled to a later day meanwhile: only the periods that are still current
                then, current = period_starts(day), period_starts(slot[0])
                for i in range(_N):
                    if then[i] == current[i]:
                        slot[_RESERVED + i] -= amount
                        slot[_SPENT + i] += actual

    def release(self, reservation: Reservation) -> None:
        self.settle(reservation, 0)

    def _find(self, scope: str, owner_id: str, now: datetime) -> array[int] | None:
        today = self._advance(now)
        slot = (self._agents if scope == "agent" else self._keys).get(owner_id)
        if slot is not None and slot[0] != today:
            _roll(slot, today)
        return slot

    def add_spend(self, line: Line, amount: int, now: datetime) -> None:
        today = self._advance(now)
        i = _INDEX[line.period]
        if period_starts(today)[i] != line.start:
            return
        slot = self._slot(self._agents if line.scope == "agent" else self._keys, line.owner_id, today)
        slot[_SPENT + i] += amount

    def totals(self, line: Line, now: datetime) -> LineTotals:
        slot = self._find(line.scope, line.owner_id, now)
        i = _INDEX[line.period]
        if slot is None or period_starts(slot[0])[i] != line.start:
            return LineTotals(0, 0)
        return LineTotals(slot[_SPENT + i], slot[_RESERVED + i])

    def spent(self, scope: str, owner_id: str, now: datetime) -> dict[Period, int]:
        slot = self._find(scope, owner_id, now)
        return {period: slot[_SPENT + i] if slot is not None else 0 for i, period in enumerate(PERIODS)}

    def forget(self, scope: str, owner_ids: Iterable[str]) -> None:
        # A reservation holds its slots themselves, not the dict's entries: it settles into a slot
        # that is no longer found here, which nothing reads again.
        slots = self._agents if scope == "agent" else self._keys
        for owner_id in owner_ids:
            slots.pop(owner_id, None)

    def __len__(self) -> int:
        """How many agents and keys have a slot."""
        return len(self._agents) + len(self._keys)


def _over(slot: array[int], budgets: Sequence[Budget], amount: int) -> Budget | None:
    for budget in budgets:
        i = _INDEX[budget.period]
        if slot[_SPENT + i] + slot[_RESERVED + i] + amount > budget.amount_micros:
            return budget
    return None


def _denied(scope: str, owner_id: str, slot: array[int], budget: Budget, amount: int) -> BudgetDenied:
    i = _INDEX[budget.period]
    line = Line(scope, owner_id, budget.period, period_starts(slot[0])[i])
    return BudgetDenied(line, budget.amount_micros, slot[_SPENT + i], slot[_RESERVED + i], amount)


def _roll(slot: array[int], today: int) -> None:
    """Move a slot forward to ``today``: the periods that started since begin at zero."""
    then, current = period_starts(slot[0]), period_starts(today)
    for i in range(_N):
        if then[i] != current[i]:
            slot[_SPENT + i] = 0
            slot[_RESERVED + i] = 0
    slot[0] = today
