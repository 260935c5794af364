"""Budget counters: reservations never let spend pass a limit, whatever the interleaving."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from gatepass.metering.counters import BudgetDenied, Line, MemoryCounters, Reservation
from gatepass.units import Period

START = datetime(2026, 11, 27, tzinfo=UTC)
DAY = Line("agent", "ag_1", Period.DAY, START)
KEY_DAY = Line("key", "key_1", Period.DAY, START)


def test_reserve_settle_release() -> None:
    counters = MemoryCounters()
    held = counters.reserve([DAY, KEY_DAY], [(DAY, 100)], 60)
    assert isinstance(held, Reservation)
    assert counters.totals(DAY).reserved == 60
    denied = counters.reserve([DAY], [(DAY, 100)], 50)
    assert isinstance(denied, BudgetDenied) and denied.line == DAY and denied.reserved == 60
    counters.settle(held, 25)
    assert (counters.totals(DAY).spent, counters.totals(DAY).reserved) == (25, 0)
    assert counters.totals(KEY_DAY).spent == 25
    counters.settle(held, 25)  # settling twice changes nothing
    assert counters.totals(DAY).spent == 25
    again = counters.reserve([DAY], [(DAY, 100)], 75)
    assert isinstance(again, Reservation)
    counters.release(again)
    assert counters.totals(DAY) == counters.totals(DAY).__class__(25, 0)


def test_a_request_that_fits_exactly_goes_through() -> None:
    counters = MemoryCounters()
    assert isinstance(counters.reserve([DAY], [(DAY, 100)], 100), Reservation)


def test_every_limited_line_must_fit() -> None:
    counters = MemoryCounters()
    counters.add_spend([KEY_DAY], 90)
    denied = counters.reserve([DAY, KEY_DAY], [(DAY, 1000), (KEY_DAY, 100)], 20)
    assert isinstance(denied, BudgetDenied) and denied.line == KEY_DAY
    assert counters.totals(DAY).reserved == 0  # nothing held when refused


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 40), st.booleans()), max_size=60))
def test_spend_never_passes_the_limit(requests: list[tuple[int, int, bool]]) -> None:
    """Any order of reserve / settle-at-most-the-reservation / release keeps spend <= limit."""
    counters = MemoryCounters()
    limit = 100
    open_: list[tuple[Reservation, int]] = []
    for worst, actual, settle_now in requests:
        held = counters.reserve([DAY], [(DAY, limit)], worst)
        if isinstance(held, Reservation):
            open_.append((held, min(actual, worst)))
        if settle_now and open_:
            reservation, cost = open_.pop(0)
            counters.settle(reservation, cost)
        totals = counters.totals(DAY)
        assert totals.spent + totals.reserved <= limit
    for reservation, cost in open_:
        counters.settle(reservation, cost)
    assert counters.totals(DAY).spent <= limit and counters.totals(DAY).reserved == 0
