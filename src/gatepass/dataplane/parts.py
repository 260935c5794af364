"""What the gateway works with, built once by ``gatepass serve`` (or by a test)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from gatepass.metering.counters import Counters
from gatepass.metering.prices import PriceTable
from gatepass.metering.ratelimit import RateLimiter
from gatepass.model import Agent, Canary
from gatepass.units import utcnow
from gatepass.vault import Vault

if TYPE_CHECKING:
    from gatepass.dataplane.exchange import Exchange

__all__ = ["DigestFn", "GatewayParts", "KeyDigests"]

#: Maps a presented key to its HMAC digest, or None when it is not a well-formed gatepass key.
DigestFn = Callable[[str], bytes | None]


class KeyDigests:
    """Presented key -> HMAC digest (None if malformed), remembered for the keys in use lately.

    The memory is small on purpose: hashing a key takes about a microsecond, and remembering every
    key of a busy store took some 190 bytes each (19 MB for 100,000 keys)."""

    _MAX = 4096

    def __init__(self, vault: Vault) -> None:
        self._digest = vault.key_digester()
        self._known: dict[str, bytes | None] = {}

    def __call__(self, presented: str) -> bytes | None:
        try:
            return self._known[presented]
        except KeyError:
            pass
        digest = self._digest(presented) if is_well_formed(presented) else None
        if len(self._known) >= self._MAX:
            self._known.clear()
        self._known[presented] = digest
        return digest


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
    #: Called after a request's cost is settled (spend thresholds are checked there).
    on_settled: Callable[[Exchange], None] | None = None
    #: Called when the loop breaker refuses a request.
    on_loop: Callable[[Agent, Trip], None] | None = None
    #: The leak guard (None: requests and responses are not scanned).
    leaks: LeakGuard | None = None
    #: Called when a request is refused because it carries one of the agent's canaries.
    on_canary: Callable[[Agent, Canary, str], None] | None = None
