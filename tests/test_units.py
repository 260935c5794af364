from datetime import UTC, datetime, timedelta

import pytest

from gatepass.errors import InvalidInputError
from gatepass.units import (
    Budget,
    Period,
    format_duration,
    format_usd,
    parse_budget,
    parse_duration,
    parse_usd,
    period_start,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("1h", 3600),
        ("7d", 604800),
        ("2w", 1209600),
        ("1h30m", 5400),
        ("1H", 3600),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(parse_duration(text))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1", "h", "-1h", "0s", "1.5h", "1y", "1h 30m", "abc", "999999w"])
def test_bad_durations_say_how(text: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_duration(text, what="TTL")
    assert "TTL" in info.value.message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("text", "micros"), [("50", 50_000_000), ("$12.50", 12_500_000), ("0.000001", 1)])
def test_usd(text: str, micros: int) -> None:
    assert parse_usd(text) == micros


@pytest.mark.parametrize("text", ["0", "-5", "abc", "1e400", "NaN", "0.0000001", "2000000000"])
def test_bad_usd(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_usd(text)


def test_format_usd() -> None:
    assert format_usd(12_500_000) == "$12.50"
    assert format_usd(125) == "$0.000125"
    assert format_usd(1_234_000_000) == "$1,234.00"


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("50/month", Budget(50_000_000, Period.MONTH)),
        ("$5.50/day", Budget(5_500_000, Period.DAY)),
        ("100/TOTAL", Budget(100_000_000, Period.TOTAL)),
        ("1/week", Budget(1_000_000, Period.WEEK)),
    ],
)
def test_budgets(text: str, budget: Budget) -> None:
    assert parse_budget(text) == budget
    assert parse_budget(str(budget)) == budget


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("50", "AMOUNT/PERIOD"),
        ("50/moth", "unknown period"),
        ("/month", "AMOUNT/PERIOD"),
        ("0/day", "more than zero"),
        ("x/day", "USD amount"),
    ],
)
def test_bad_budgets(text: str, hint: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_budget(text)
    assert hint in info.value.message
    assert "e.g. 50/month" in info.value.message


def test_period_starts_are_utc_calendar_periods() -> None:
    now = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)  # a Friday
    assert period_start(Period.DAY, now) == datetime(2026, 11, 27, tzinfo=UTC)
    assert period_start(Period.WEEK, now) == datetime(2026, 11, 23, tzinfo=UTC)
    assert period_start(Period.MONTH, now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert period_start(Period.TOTAL, now) == datetime(1970, 1, 1, tzinfo=UTC)
