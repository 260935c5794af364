"""What the gateway works with, built once by ``gatepass serve`` (or by a test)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gatepass.alerts.breaker import LoopBreaker, Trip
from gatepass.audit import AsyncAuditWriter
from gatepass.dataplane.http.client import UpstreamPool
from gatepass.dataplane.metrics import Metrics
from gatepass.dataplane.spend import SpendLedger
from gatepass.dataplane.state import RuntimeState
from gatepass.metering.counters import Counters
from gatepass.metering.prices import PriceTable
from gatepass.metering.ratelimit import RateLimiter
from gatepass.model import Agent
from gatepass.units import Period, period_start

if TYPE_CHECKING:
    from gatepass.dataplane.exchange import Exchange

__all__ = ["DigestFn", "GatewayParts", "PeriodClock"]

#: Maps a presented key to its HMAC digest (the vault's server secret is inside).
DigestFn = Callable[[str], str]


class PeriodClock:
    """Starts of the current UTC day, week, month (and the epoch for total), computed once a day."""

    def __init__(self) -> None:
        self._day: tuple[int, int, int] | None = None
        self._starts: dict[Period, datetime] = {}

    def starts(self, now: datetime) -> dict[Period, datetime]:
        day = (now.year, now.month, now.day)
        if day != self._day:
            self._starts = {p: period_start(p, now) for p in Period}
            self._day = day
        return self._starts


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class GatewayParts:
    state: RuntimeState
    digest: DigestFn
    prices: PriceTable
    counters: Counters
    limiter: RateLimiter
    audit: AsyncAuditWriter
    pool: UpstreamPool
    spend: SpendLedger
    metrics: Metrics
    breaker: LoopBreaker | None = None
    max_response_bytes: int = 64 * 1024 * 1024
    clock: Callable[[], datetime] = _utcnow
    periods: PeriodClock = field(default_factory=PeriodClock)
    #: Called after a request's cost is settled (spend thresholds are checked there).
    on_settled: Callable[[Exchange], None] | None = None
    #: Called when the loop breaker refuses a request.
    on_loop: Callable[[Agent, Trip], None] | None = None
