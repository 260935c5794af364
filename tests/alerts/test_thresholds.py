"""Thresholds: the grammar, and which thresholds fire when (once per period, again the next)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gatepass.alerts import Action, Firing, Threshold, due, parse_threshold, parse_thresholds
from gatepass.errors import InvalidInputError
from gatepass.units import Period

USD = 1_000_000
NOW = datetime(2024, 5, 15, 12, 0, tzinfo=UTC)  # a Wednesday

WARN10 = Threshold.of(10 * USD, Period.MONTH, Action.WARN)
STOP50 = Threshold.of(50 * USD, Period.MONTH, Action.STOP)
REVOKE100 = Threshold.of(100 * USD, Period.MONTH, Action.REVOKE)
DAY_STOP5 = Threshold.of(5 * USD, Period.DAY, Action.STOP)
TOTAL_REVOKE = Threshold.of(1000 * USD, Period.TOTAL, Action.REVOKE)
MONTHLY = [REVOKE100, WARN10, STOP50]  # deliberately not in order


@pytest.mark.parametrize(
    ("text", "amount", "period", "action", "canonical"),
    [
        ("10:warn", 10 * USD, Period.MONTH, Action.WARN, "10/month:warn"),
        ("$50/month:stop", 50 * USD, Period.MONTH, Action.STOP, "50/month:stop"),
        ("100/total:revoke", 100 * USD, Period.TOTAL, Action.REVOKE, "100/total:revoke"),
        ("0.5/day:WARN", 500_000, Period.DAY, Action.WARN, "0.50/day:warn"),
        (" 12.50 / Week : stop ", 12_500_000, Period.WEEK, Action.STOP, "12.50/week:stop"),
        ("$0.000001:warn", 1, Period.MONTH, Action.WARN, "0.000001/month:warn"),
    ],
)
def test_parse_threshold(text: str, amount: int, period: Period, action: Action, canonical: str) -> None:
    threshold = parse_threshold(text)
    assert (threshold.amount_micros, threshold.period, threshold.action) == (amount, period, action)
    assert threshold.id == str(threshold) == canonical
    assert parse_threshold(canonical) == threshold  # the canonical spelling reads back the same


def test_default_period_is_the_callers() -> None:
    assert parse_threshold("10:warn", default_period=Period.DAY) == Threshold.of(10 * USD, Period.DAY, Action.WARN)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "use [$]AMOUNT"),
        ("10", "use [$]AMOUNT"),
        ("warn", "use [$]AMOUNT"),
        ("10/month:", "use [$]AMOUNT"),
        (":warn", "use [$]AMOUNT"),
        ("10:explode", "unknown action 'explode'"),
        ("-5:warn", "more than zero"),
        ("0/day:stop", "more than zero"),
        ("10/year:warn", "unknown period 'year'"),
        ("ten:warn", "write a USD amount"),
        ("1.0000001:warn", "at most 6 decimal places"),
        ("10/month/day:warn", "unknown period"),
    ],
)
def test_parse_threshold_errors_are_one_line_with_an_example(text: str, says: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_threshold(text)
    message = info.value.message
    assert says in message
    assert "e.g. 50/month:stop" in message
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_parse_thresholds_reads_a_list_in_severity_order() -> None:
    assert parse_thresholds("100:revoke, 10:warn,50:stop") == [WARN10, STOP50, REVOKE100]
    assert parse_thresholds(["10:warn", "5/day:stop"]) == [WARN10, DAY_STOP5]
    assert parse_thresholds("") == []


def test_parse_thresholds_refuses_the_same_threshold_twice() -> None:
    with pytest.raises(InvalidInputError, match="given twice"):
        parse_thresholds("10:warn,$10.00/month:warn")


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"id": "", "amount_micros": 1, "period": Period.DAY, "action": Action.WARN}, "invalid threshold id"),
        ({"id": "a\nb", "amount_micros": 1, "period": Period.DAY, "action": Action.WARN}, "invalid threshold id"),
        ({"id": "x", "amount_micros": 0, "period": Period.DAY, "action": Action.WARN}, "more than zero"),
    ],
)
def test_threshold_validates(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        Threshold(**kwargs)  # type: ignore[arg-type]


def test_action_severity_orders_warn_stop_revoke() -> None:
    assert sorted(Action, key=lambda a: a.severity) == [Action.WARN, Action.STOP, Action.REVOKE]
    assert [a.severity for a in Action] == [0, 1, 2]


def _ids(firings: list[Firing]) -> list[str]:
    return [f.threshold.id for f in firings]


MONTH = datetime(2024, 5, 1, tzinfo=UTC)
DAY = datetime(2024, 5, 15, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "thresholds", "spend", "fired", "expected"),
    [
        ("below every threshold", MONTHLY, {Period.MONTH: 10 * USD - 1}, set(), []),
        ("exactly at one", MONTHLY, {Period.MONTH: 10 * USD}, set(), ["10/month:warn"]),
        ("crossing two at once", MONTHLY, {Period.MONTH: 60 * USD}, set(), ["10/month:warn", "50/month:stop"]),
        (
            "all three, most severe last",
            MONTHLY,
            {Period.MONTH: 150 * USD},
            set(),
            ["10/month:warn", "50/month:stop", "100/month:revoke"],
        ),
        ("already fired this period", MONTHLY, {Period.MONTH: 60 * USD}, {(WARN10.id, MONTH)}, ["50/month:stop"]),
        ("fired in an earlier period only", MONTHLY, {Period.MONTH: 10 * USD}, {(WARN10.id, EPOCH)}, ["10/month:warn"]),
        (
            "severity beats amount across periods",
            [DAY_STOP5, WARN10],
            {Period.DAY: 6 * USD, Period.MONTH: 20 * USD},
            set(),
            ["10/month:warn", "5/day:stop"],
        ),
        (
            "each period has its own spend",
            [DAY_STOP5, WARN10],
            {Period.DAY: 1, Period.MONTH: 20 * USD},
            set(),
            [WARN10.id],
        ),
        ("total", [TOTAL_REVOKE], {Period.TOTAL: 1000 * USD}, set(), ["1000/total:revoke"]),
        ("no thresholds", [], {}, set(), []),
    ],
)
def test_due(
    name: str,
    thresholds: list[Threshold],
    spend: dict[Period, int],
    fired: set[tuple[str, datetime]],
    expected: list[str],
) -> None:
    assert _ids(due(thresholds, spend, fired, NOW)) == expected, name


def test_firing_carries_period_start_and_spend() -> None:
    (firing,) = due([DAY_STOP5], {Period.DAY: 7 * USD}, set(), NOW)
    assert firing == Firing(DAY_STOP5, DAY, 7 * USD)
    assert firing.key == (DAY_STOP5.id, DAY)


@pytest.mark.parametrize(
    ("period", "first", "later_same_period", "next_period"),
    [
        (Period.DAY, datetime(2024, 5, 15, 0, 0), datetime(2024, 5, 15, 23, 59, 59), datetime(2024, 5, 16, 0, 0)),
        # 2024-05-19 is a Sunday, the 20th a Monday: weeks start on Monday.
        (Period.WEEK, datetime(2024, 5, 13, 9, 0), datetime(2024, 5, 19, 23, 59, 59), datetime(2024, 5, 20, 0, 0)),
        (Period.MONTH, datetime(2024, 2, 1, 0, 0), datetime(2024, 2, 29, 23, 59, 59), datetime(2024, 3, 1, 0, 0)),
        (Period.MONTH, datetime(2023, 12, 31, 8, 0), datetime(2023, 12, 31, 9, 0), datetime(2024, 1, 1, 0, 0)),
    ],
)
def test_fires_once_per_period_and_again_in_the_next(
    period: Period, first: datetime, later_same_period: datetime, next_period: datetime
) -> None:
    threshold = Threshold.of(10 * USD, period, Action.STOP)
    spend = {period: 20 * USD}
    fired: set[tuple[str, datetime]] = set()

    (firing,) = due([threshold], spend, fired, first.replace(tzinfo=UTC))
    fired.add(firing.key)
    assert due([threshold], spend, fired, first.replace(tzinfo=UTC)) == []
    assert due([threshold], spend, fired, later_same_period.replace(tzinfo=UTC)) == []

    (again,) = due([threshold], spend, fired, next_period.replace(tzinfo=UTC))
    assert again.period_start == next_period.replace(tzinfo=UTC)
    assert again.key != firing.key


def test_total_never_resets() -> None:
    fired: set[tuple[str, datetime]] = set()
    (firing,) = due([TOTAL_REVOKE], {Period.TOTAL: 2000 * USD}, fired, NOW)
    assert firing.period_start == EPOCH
    fired.add(firing.key)
    for years in (0, 1, 10):
        assert due([TOTAL_REVOKE], {Period.TOTAL: 5000 * USD}, fired, NOW + timedelta(days=365 * years)) == []


def test_periods_are_utc_calendar_periods_whatever_the_callers_zone() -> None:
    # 01:00 on 1 May in UTC+2 is still 30 April in UTC: the April period.
    now = datetime(2024, 5, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    (firing,) = due([WARN10], {Period.MONTH: 10 * USD}, set(), now)
    assert firing.period_start == datetime(2024, 4, 1, tzinfo=UTC)


def test_due_refuses_what_would_skip_a_threshold_silently() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due(MONTHLY, {Period.MONTH: 0}, set(), datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="no spend given for period 'day'"):
        due([DAY_STOP5], {Period.MONTH: 100 * USD}, set(), NOW)
    with pytest.raises(ValueError, match="appears twice"):
        due([WARN10, WARN10], {Period.MONTH: 100 * USD}, set(), NOW)
