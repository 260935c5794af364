"""Durations, money and budgets as the user writes them, parsed into exact values.

Money is held as integer micro-dollars (1 USD = 1_000_000) so that sums never drift.
Budget periods are UTC calendar periods: a day starts at 00:00 UTC, a week on Monday,
a month on the 1st; ``total`` never resets.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Final, assert_never

from gatepass.errors import InvalidInputError

__all__ = [
    "MICROS_PER_USD",
    "Budget",
    "Period",
    "format_duration",
    "format_usd",
    "parse_budget",
    "parse_duration",
    "parse_usd",
    "period_start",
    "utcnow",
]

MICROS_PER_USD: Final = 1_000_000

#: The current time, timezone-aware in UTC: the default clock of the gateway, the audit log and the
#: control plane. A partial of ``datetime.now``, so a call runs no Python frame (several per request).
utcnow: Final[Callable[[], datetime]] = partial(datetime.now, UTC)
_MAX_USD: Final = Decimal(1_000_000_000)

_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_RE: Final = re.compile(r"(?:(\d+)([smhdw]))+")
_DURATION_PART_RE: Final = re.compile(r"(\d+)([smhdw])")
_DURATION_HELP: Final = "use a whole number and a unit s, m, h, d or w (e.g. 30m, 1h, 7d or 1h30m)"


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """Parse ``30s``, ``15m``, ``1h``, ``7d``, ``2w`` or a sum such as ``1h30m``; must be positive."""
    cleaned = text.strip().lower()
    if not _DURATION_RE.fullmatch(cleaned):
        raise InvalidInputError(f"invalid {what} {text!r}: {_DURATION_HELP}")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART_RE.findall(cleaned))
    if seconds <= 0:
        raise InvalidInputError(f"invalid {what} {text!r}: it must be longer than zero ({_DURATION_HELP})")
    if seconds > 100 * 365 * 86400:
        raise InvalidInputError(f"invalid {what} {text!r}: at most 100 years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration in the units that parse_duration reads."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def parse_usd(text: str, *, what: str = "amount") -> int:
    """Parse a USD amount such as ``50``, ``$12.50`` or ``0.000001`` into micro-dollars (> 0)."""
    raw = text.strip().removeprefix("$")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise InvalidInputError(f"invalid {what} {text!r}: write a USD amount such as 50 or 12.50") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidInputError(f"invalid {what} {text!r}: the amount must be more than zero")
    if amount > _MAX_USD:
        raise InvalidInputError(f"invalid {what} {text!r}: at most $1,000,000,000")
    micros = amount * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise InvalidInputError(f"invalid {what} {text!r}: at most 6 decimal places")
    return int(micros)


def format_usd(micros: int) -> str:
    """``$12.50``, ``$0.000125``: at least two decimals, more only when they carry something."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    digits = f"{frac:06d}".rstrip("0")
    digits = digits.ljust(2, "0")
    return f"{sign}${whole:,}.{digits}"


class Period(enum.StrEnum):
    """A budget period; calendar periods in UTC."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    TOTAL = "total"


_BUDGET_HELP: Final = "use AMOUNT/PERIOD in USD, PERIOD one of day, week, month, total (e.g. 50/month)"


@dataclass(frozen=True, slots=True)
class Budget:
    """A spending limit: ``amount_micros`` USD micro-dollars per ``period``."""

    amount_micros: int
    period: Period

    def __str__(self) -> str:
        amount = format_usd(self.amount_micros).removeprefix("$").replace(",", "")
        if amount.endswith(".00"):
            amount = amount[:-3]
        return f"{amount}/{self.period.value}"


def parse_budget(text: str) -> Budget:
    """Parse ``AMOUNT/PERIOD`` (e.g. ``50/month``, ``$5.50/day``)."""
    amount_text, slash, period_text = text.strip().partition("/")
    if not slash or not amount_text or not period_text:
        raise InvalidInputError(f"invalid budget {text!r}: {_BUDGET_HELP}")
    try:
        period = Period(period_text.strip().lower())
    except ValueError:
        raise InvalidInputError(f"invalid budget {text!r}: unknown period {period_text!r}; {_BUDGET_HELP}") from None
    try:
        micros = parse_usd(amount_text, what="budget amount")
    except InvalidInputError as exc:
        raise InvalidInputError(f"invalid budget {text!r}: {exc.message.split(': ', 1)[-1]}; {_BUDGET_HELP}") from None
    return Budget(micros, period)


def period_start(period: Period, now: datetime) -> datetime:
    """Start (UTC) of the calendar period that contains ``now``."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    match period:
        case Period.DAY:
            return midnight
        case Period.WEEK:
            return midnight - timedelta(days=midnight.weekday())
        case Period.MONTH:
            return midnight.replace(day=1)
        case Period.TOTAL:
            return datetime(1970, 1, 1, tzinfo=UTC)
        case _:
            assert_never(period)
