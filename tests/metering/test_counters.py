"""Budget counters: reservations never let spend pass a limit, whatever the interleaving; periods roll
over at UTC midnight, month and week starts without losing what is still current; memory per owner is small."""

import tracemalloc
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from gatepass.metering.counters import BudgetDenied, Line, LineTotals, MemoryCounters, Reservation
from gatepass.units import Budget, Period, period_start

NOW = datetime(2026, 11, 27, 15, tzinfo=UTC)  # a Friday
DAY = Line("agent", "ag_1", Period.DAY, period_start(Period.DAY, NOW))
KEY_DAY = Line("key", "key_1", Period.DAY, period_start(Period.DAY, NOW))
NONE: tuple[Budget, ...] = ()


def day_budget(micros: int) -> tuple[Budget, ...]:
    return (Budget(micros, Period.DAY),)


def reserve(counters: MemoryCounters, amount: int, agent_day: int | None = 100, *, now: datetime = NOW) -> object:
    budgets = day_budget(agent_day) if agent_day is not None else NONE
    return counters.reserve("ag_1", budgets, "key_1", NONE, amount, now)


def line(scope: str, period: Period, now: datetime = NOW) -> Line:
    return Line(scope, "ag_1" if scope == "agent" else "key_1", period, period_start(period, now))


def test_reserve_settle_release() -> None:
    counters = MemoryCounters()
    held = reserve(counters, 60)
    assert isinstance(held, Reservation)
    assert counters.totals(DAY, NOW) == LineTotals(0, 60)
    assert all(counters.totals(line(s, p), NOW).reserved == 60 for s in ("agent", "key") for p in Period)
    denied = reserve(counters, 50)
    assert isinstance(denied, BudgetDenied) and denied.line == DAY and (denied.reserved, denied.needed) == (60, 50)
    counters.settle(held, 25)
    assert counters.totals(DAY, NOW) == LineTotals(25, 0)
    assert counters.totals(line("key", Period.TOTAL), NOW) == LineTotals(25, 0)
    counters.settle(held, 25)  # settling twice changes nothing
    assert counters.totals(DAY, NOW).spent == 25
    again = reserve(counters, 75)
    assert isinstance(again, Reservation)
    counters.release(again)
    assert counters.totals(DAY, NOW) == LineTotals(25, 0)
    assert counters.spent("agent", "ag_1", NOW) == dict.fromkeys(Period, 25)
    assert counters.spent("agent", "ag_nobody", NOW) == dict.fromkeys(Period, 0)


def test_forgetting_drops_slots_and_lets_an_open_reservation_settle() -> None:
    counters = MemoryCounters()
    held = reserve(counters, 60)
    assert isinstance(held, Reservation) and len(counters) == 2
    counters.forget("key", ["key_1", "key_never_seen"])
    assert len(counters) == 1 and counters.spent("key", "key_1", NOW) == dict.fromkeys(Period, 0)
    counters.settle(held, 40)  # into the forgotten slot, and into the agent's as ever
    assert counters.totals(DAY, NOW) == LineTotals(40, 0)
    assert counters.totals(KEY_DAY, NOW) == LineTotals(0, 0)
    counters.forget("agent", ["ag_1"])
    assert len(counters) == 0 and counters.totals(DAY, NOW) == LineTotals(0, 0)


def test_a_request_that_fits_exactly_goes_through() -> None:
    assert isinstance(reserve(MemoryCounters(), 100), Reservation)


def test_every_budget_of_agent_and_key_must_fit() -> None:
    counters = MemoryCounters()
    counters.add_spend(KEY_DAY, 90, NOW)
    denied = counters.reserve("ag_1", day_budget(1000), "key_1", day_budget(100), 20, NOW)
    assert isinstance(denied, BudgetDenied) and denied.line == KEY_DAY and denied.spent == 90
    assert counters.totals(DAY, NOW).reserved == 0  # nothing held when refused
    month = (Budget(1000, Period.MONTH),)
    counters.add_spend(line("agent", Period.MONTH), 990, NOW)
    denied = counters.reserve("ag_1", month, "key_1", NONE, 20, NOW)
    assert isinstance(denied, BudgetDenied) and denied.line == line("agent", Period.MONTH)


def test_loading_keeps_only_the_current_periods() -> None:
    counters = MemoryCounters()
    yesterday = NOW - timedelta(days=1)
    counters.add_spend(line("agent", Period.DAY, yesterday), 70, NOW)  # ended: not counted
    counters.add_spend(line("agent", Period.WEEK, yesterday), 70, NOW)  # same week: counted
    assert counters.spent("agent", "ag_1", NOW) == {Period.DAY: 0, Period.WEEK: 70, Period.MONTH: 0, Period.TOTAL: 0}
    assert counters.totals(line("agent", Period.DAY, yesterday), NOW) == LineTotals(0, 0)


def test_a_new_day_starts_at_zero_and_keeps_the_week_month_and_total() -> None:
    counters = MemoryCounters()
    held = reserve(counters, 100)
    assert isinstance(held, Reservation)
    counters.settle(held, 100)
    assert isinstance(reserve(counters, 1), BudgetDenied)  # today's budget is spent
    tomorrow = NOW + timedelta(days=1)  # Saturday: same week and month
    held = reserve(counters, 100, now=tomorrow)
    assert isinstance(held, Reservation)
    counters.settle(held, 30)
    assert counters.spent("key", "key_1", tomorrow) == {
        Period.DAY: 30,
        Period.WEEK: 130,
        Period.MONTH: 130,
        Period.TOTAL: 130,
    }
    monday = datetime(2026, 11, 30, 9, tzinfo=UTC)  # a new week, same month
    assert counters.spent("agent", "ag_1", monday) == {
        Period.DAY: 0,
        Period.WEEK: 0,
        Period.MONTH: 130,
        Period.TOTAL: 130,
    }


def test_a_reservation_made_before_midnight_settles_into_the_periods_still_current() -> None:
    counters = MemoryCounters()
    late = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)  # Monday: the month ends at midnight, the week not
    held = reserve(counters, 50, None, now=late)
    assert isinstance(held, Reservation)
    after = late + timedelta(seconds=2)
    other = reserve(counters, 10, None, now=after)  # the counters roll to December 1st
    assert isinstance(other, Reservation)
    assert counters.totals(line("agent", Period.DAY, after), after) == LineTotals(0, 10)
    assert counters.totals(line("agent", Period.WEEK, after), after) == LineTotals(0, 60)
    counters.settle(held, 40)  # November's day and month are gone; the week and total take it
    assert counters.spent("agent", "ag_1", after) == {Period.DAY: 0, Period.WEEK: 40, Period.MONTH: 0, Period.TOTAL: 40}
    assert counters.totals(line("key", Period.WEEK, after), after) == LineTotals(40, 10)
    counters.settle(other, 10)
    assert counters.totals(line("key", Period.MONTH, after), after) == LineTotals(10, 0)


def test_a_request_from_just_before_the_latest_day_counts_in_that_day() -> None:
    """Requests reach the counters slightly out of order: the counters never go back a day."""
    counters = MemoryCounters()
    after = datetime(2026, 11, 28, 0, 0, 1, tzinfo=UTC)
    assert isinstance(reserve(counters, 10, now=after), Reservation)
    before = after - timedelta(seconds=2)
    held = reserve(counters, 95, now=before)
    assert isinstance(held, BudgetDenied)  # the day's 100 holds 10 already: no second day's budget
    assert held.line.start == period_start(Period.DAY, after)


def test_local_times_count_by_their_utc_day() -> None:
    counters = MemoryCounters()
    tokyo = datetime(2026, 11, 28, 8, tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    held = reserve(counters, 10, now=tokyo)  # 17:00 in Tokyo, still the 28th in UTC
    assert isinstance(held, Reservation) and held.day == datetime(2026, 11, 28).toordinal()


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 40), st.booleans(), st.integers(0, 2)), max_size=60))
def test_spend_never_passes_the_limit(requests: list[tuple[int, int, bool, int]]) -> None:
    """Any order of reserve / settle-at-most-the-reservation / release, across days, keeps each
    day's spend <= its limit."""
    counters = MemoryCounters()
    limit = 100
    open_: list[tuple[Reservation, int]] = []
    now = NOW
    for worst, actual, settle_now, days_later in requests:
        now += timedelta(hours=12 * days_later)
        held = reserve(counters, worst, limit, now=now)
        if isinstance(held, Reservation):
            open_.append((held, min(actual, worst)))
        if settle_now and open_:
            reservation, cost = open_.pop(0)
            counters.settle(reservation, cost)
        totals = counters.totals(line("agent", Period.DAY, now), now)
        assert totals.spent + totals.reserved <= limit and totals.reserved >= 0
    for reservation, cost in open_:
        counters.settle(reservation, cost)
    totals = counters.totals(line("agent", Period.DAY, now), now)
    assert totals.spent <= limit and totals.reserved == 0
    assert counters.totals(line("agent", Period.TOTAL, now), now).reserved == 0


def test_ten_thousand_keys_in_use_take_little_memory() -> None:
    """The counters hold one small slot per agent and key in use (eight lines of objects took about
    1,600 bytes per key)."""
    counters = MemoryCounters()
    budgets = day_budget(10**9)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(10_000):
            held = counters.reserve(f"ag_{i % 1000}", budgets, f"key_{i:05d}", budgets, 1_000, NOW)
            assert isinstance(held, Reservation)
            counters.settle(held, 700)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(counters) == 11_000
    assert used / 11_000 < 300, f"{used / 11_000:.0f} bytes per agent or key"
