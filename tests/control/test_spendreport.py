from datetime import UTC, datetime

from gatepass.control.spendreport import spend_report, store_totals
from gatepass.store.interface import SpendRow
from gatepass.units import Budget, Period, period_start
from tests.factories import make_agent, make_key

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_report_against_budgets() -> None:
    agent = make_agent(budgets=(Budget(5_000_000, Period.DAY),))
    key = make_key(budgets=(Budget(1_000_000, Period.MONTH),))
    # As Transaction.current_spend gives them: one row per owner and current period (the sums of the
    # store's day rows are tested with the store).
    agent_spend = {Period.DAY: 1_250_000, Period.WEEK: 10_250_000, Period.MONTH: 10_750_000, Period.TOTAL: 20_000_000}
    rows = [SpendRow("agent", "ag_1", p, period_start(p, NOW), micros) for p, micros in agent_spend.items()]
    rows.append(SpendRow("key", "key_1", Period.MONTH, period_start(Period.MONTH, NOW), 400_000))
    report = spend_report([agent], [key], NOW, store_totals(rows), source="store")
    (item,) = report["agents"]
    spent = {p["period"]: p["spent_micros"] for p in item["periods"]}
    assert spent == {"day": 1_250_000, "week": 10_250_000, "month": 10_750_000, "total": 20_000_000}
    day = next(p for p in item["periods"] if p["period"] == "day")
    assert (day["spent"], day["budget"], day["left_micros"]) == ("$1.25", "$5.00", 3_750_000)
    week = next(p for p in item["periods"] if p["period"] == "week")
    assert week["budget_micros"] is None
    (key_item,) = item["keys"]
    month = next(p for p in key_item["periods"] if p["period"] == "month")
    assert (month["spent_micros"], month["left_micros"]) == (400_000, 600_000)
    assert report["source"] == "store"
