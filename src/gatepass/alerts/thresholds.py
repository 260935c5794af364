"""Spend thresholds: what to do when an agent's settled spend in a period reaches an amount.

Pure logic, no I/O. The owner writes a threshold as ``[$]AMOUNT[/PERIOD]:ACTION``::

    10:warn                 $10 in the default period (the caller's choice; month unless told)
    $50/month:stop          suspend the agent at $50 in a calendar month (UTC)
    100/total:revoke        revoke every key of the agent once it has spent $100 in all
    10:warn,50:stop         parse_thresholds reads a comma-separated list

PERIOD is one of day, week, month, total (as for budgets); ACTION one of warn, stop, revoke.
A threshold's ``id`` defaults to its canonical spelling (``50/month:stop``), so the same rule
written twice is the same threshold, and a changed rule is a new one.

:func:`due` tells which thresholds fire now. A firing is keyed by ``(threshold id, start of the
period)``, with the start computed by :func:`due` itself from ``now``: once the caller records
``firing.key`` in its set of fired keys, that threshold cannot fire again in that period, and it
fires again in the next one because the key changes (``total`` starts in 1970 and never changes).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from gatepass.errors import InvalidInputError
from gatepass.units import Budget, Period, parse_budget, parse_usd, period_start

__all__ = [
    "Action",
    "FiredKey",
    "Firing",
    "Threshold",
    "due",
    "parse_threshold",
    "parse_thresholds",
]

FiredKey = tuple[str, datetime]
"""``(threshold id, period start)``: the identity of one firing, recorded by the caller."""

_HELP: Final = (
    "use [$]AMOUNT[/PERIOD]:ACTION, PERIOD one of day, week, month, total and ACTION one of warn, stop, revoke "
    "(e.g. 50/month:stop)"
)


class Action(enum.StrEnum):
    """What a threshold does when reached, from the mildest to the most severe."""

    WARN = "warn"  # notify only
    STOP = "stop"  # suspend the agent, notify
    REVOKE = "revoke"  # revoke every key of the agent, suspend it, notify

    @property
    def severity(self) -> int:
        """0 for warn, 1 for stop, 2 for revoke: sort by this, not by the string value."""
        return _SEVERITY[self]


_SEVERITY: Final = {Action.WARN: 0, Action.STOP: 1, Action.REVOKE: 2}


@dataclass(frozen=True, slots=True)
class Threshold:
    """Run ``action`` once per ``period`` when spend in that period reaches ``amount_micros``."""

    id: str
    amount_micros: int
    period: Period
    action: Action

    def __post_init__(self) -> None:
        if not self.id or self.id != self.id.strip() or any(c in self.id for c in "\r\n"):
            raise InvalidInputError(
                f"invalid threshold id {self.id!r}: use a non-empty single line, e.g. 50/month:stop"
            )
        if self.amount_micros <= 0:
            raise InvalidInputError(f"invalid threshold {self.id!r}: the amount must be more than zero")

    @classmethod
    def of(cls, amount_micros: int, period: Period, action: Action) -> Threshold:
        """A threshold whose id is its canonical spelling."""
        return cls(_canonical(amount_micros, period, action), amount_micros, period, action)

    def __str__(self) -> str:
        return _canonical(self.amount_micros, self.period, self.action)


@dataclass(frozen=True, slots=True)
class Firing:
    """A threshold reached in the period that starts at ``period_start``, with what was spent."""

    threshold: Threshold
    period_start: datetime
    spent_micros: int

    @property
    def key(self) -> FiredKey:
        """Add this to the set of fired keys once the action has run (and is audited)."""
        return (self.threshold.id, self.period_start)


def _canonical(amount_micros: int, period: Period, action: Action) -> str:
    return f"{Budget(amount_micros, period)}:{action.value}"


def parse_threshold(text: str, *, default_period: Period = Period.MONTH) -> Threshold:
    """Parse ``[$]AMOUNT[/PERIOD]:ACTION`` (e.g. ``10:warn``, ``$50/month:stop``, ``100/total:revoke``)."""
    spend_text, colon, action_text = text.strip().rpartition(":")
    if not colon or not spend_text.strip() or not action_text.strip():
        raise InvalidInputError(f"invalid threshold {text!r}: {_HELP}")
    try:
        action = Action(action_text.strip().lower())
    except ValueError:
        raise InvalidInputError(
            f"invalid threshold {text!r}: unknown action {action_text.strip()!r}; {_HELP}"
        ) from None
    try:
        if "/" in spend_text:
            budget = parse_budget(spend_text)
            amount, period = budget.amount_micros, budget.period
        else:
            amount, period = parse_usd(spend_text, what="threshold amount"), default_period
    except InvalidInputError as exc:
        reason = exc.message.split(": ", 1)[-1].split("; ", 1)[0]
        raise InvalidInputError(f"invalid threshold {text!r}: {reason}; {_HELP}") from None
    return Threshold.of(amount, period, action)


def parse_thresholds(texts: str | Iterable[str], *, default_period: Period = Period.MONTH) -> list[Threshold]:
    """Parse thresholds given as one comma-separated string or as several strings; no duplicates."""
    parts = [texts] if isinstance(texts, str) else list(texts)
    items = [item.strip() for part in parts for item in part.split(",") if item.strip()]
    result = [parse_threshold(item, default_period=default_period) for item in items]
    seen: set[str] = set()
    for threshold in result:
        if threshold.id in seen:
            raise InvalidInputError(f"threshold {threshold.id} is given twice: keep one (e.g. 10:warn,50:stop)")
        seen.add(threshold.id)
    return sorted(result, key=_order)


def _order(threshold: Threshold) -> tuple[int, int, str]:
    return (threshold.action.severity, threshold.amount_micros, threshold.id)


def due(
    thresholds: Iterable[Threshold],
    spend_by_period: Mapping[Period, int],
    fired: Collection[FiredKey],
    now: datetime,
) -> list[Firing]:
    """The thresholds reached and not yet fired in their current period, most severe last.

    ``spend_by_period`` holds the agent's settled spend (micro-dollars) in the current calendar
    period of each period that a threshold uses; a missing period is an error rather than zero,
    so a caller cannot silently skip a stop. ``fired`` holds the keys of earlier firings
    (:attr:`Firing.key`); keys of past periods may stay in it, they never match again.
    ``now`` must be timezone-aware. Applying the result in order ends with the strongest action.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("due() needs a timezone-aware now (e.g. datetime.now(UTC))")
    firings: list[Firing] = []
    seen: set[str] = set()
    for threshold in thresholds:
        if threshold.id in seen:
            raise ValueError(f"threshold id {threshold.id!r} appears twice; ids must be unique per agent")
        seen.add(threshold.id)
        if threshold.period not in spend_by_period:
            raise ValueError(f"no spend given for period {threshold.period.value!r} (threshold {threshold.id})")
        spent = spend_by_period[threshold.period]
        start = period_start(threshold.period, now)
        if spent >= threshold.amount_micros and (threshold.id, start) not in fired:
            firings.append(Firing(threshold, start, spent))
    firings.sort(key=lambda firing: _order(firing.threshold))
    return firings
