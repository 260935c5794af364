"""What the gateway works with, built once by ``gatepass serve`` (or by a test)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from gatepass.alerts.breaker import LoopBreaker, Trip
from gatepass.audit import AsyncAuditWriter
from gatepass.dataplane.http.client import UpstreamPool
from gatepass.dataplane.leaks import LeakGuard
from gatepass.dataplane.metrics import Metrics
from gatepass.dataplane.spend import SpendLedger
from gatepass.dataplane.state import RuntimeState
from gatepass.keyformat import is_well_formed
from gatepass.metering.counters import Counters, Line
from gatepass.metering.prices import PriceTable
from gatepass.metering.ratelimit import RateLimiter
from gatepass.model import Agent, Canary, LiveKey
from gatepass.sensitive import Secret
from gatepass.units import Period, period_start, utcnow
from gatepass.vault import Vault

if TYPE_CHECKING:
    from gatepass.dataplane.exchange import Exchange

__all__ = ["DigestFn", "GatewayParts", "KeyDigests", "LineBook", "PeriodClock"]

#: Maps a presented key to its HMAC digest, or None when it is not a well-formed gatepass key.
DigestFn = Callable[[str], bytes | None]


class KeyDigests:
    """Presented key -> HMAC digest (None if malformed), remembered so that a busy key is checked and
    hashed once. Bounded; the keys it holds are in this process's memory anyway while requests run."""

    _MAX = 100_000

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._known: dict[str, bytes | None] = {}

    def __call__(self, presented: str) -> bytes | None:
        try:
            return self._known[presented]
        except KeyError:
            pass
        digest = bytes.fromhex(self._vault.key_digest(Secret(presented))) if is_well_formed(presented) else None
        if len(self._known) >= self._MAX:
            self._known.clear()
        self._known[presented] = digest
        return digest


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


class LineBook:
    """The budget lines a request of (agent, key) is charged to, and those its budgets limit.

    Cached per (agent, key) and UTC day: the cached entry is used only while the agent and key
    records are the very objects it was made from (a change to either replaces them).
    """

    _MAX = 100_000

    def __init__(self) -> None:
        self._periods = PeriodClock()
        self._cache: dict[tuple[str, str], tuple[object, Agent, LiveKey, tuple[Line, ...], list[tuple[Line, int]]]] = {}

    def lines(self, agent: Agent, key: LiveKey, now: datetime) -> tuple[tuple[Line, ...], list[tuple[Line, int]]]:
        starts = self._periods.starts(now)
        hit = self._cache.get((agent.id, key.id))
        if hit is not None and hit[0] is starts and hit[1] is agent and hit[2] is key:
            return hit[3], hit[4]
        charged = tuple(Line("agent", agent.id, p, s) for p, s in starts.items()) + tuple(
            Line("key", key.id, p, s) for p, s in starts.items()
        )
        limits = [(Line("agent", agent.id, b.period, starts[b.period]), b.amount_micros) for b in agent.budgets]
        limits += [(Line("key", key.id, b.period, starts[b.period]), b.amount_micros) for b in key.budgets]
        if len(self._cache) >= self._MAX:
            self._cache.clear()
        self._cache[(agent.id, key.id)] = (starts, agent, key, charged, limits)
        return charged, limits


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
    clock: Callable[[], datetime] = utcnow
    lines: LineBook = field(default_factory=LineBook)
    #: Called after a request's cost is settled (spend thresholds are checked there).
    on_settled: Callable[[Exchange], None] | None = None
    #: Called when the loop breaker refuses a request.
    on_loop: Callable[[Agent, Trip], None] | None = None
    #: The leak guard (None: requests and responses are not scanned).
    leaks: LeakGuard | None = None
    #: Called when a request is refused because it carries one of the agent's canaries.
    on_canary: Callable[[Agent, Canary, str], None] | None = None
