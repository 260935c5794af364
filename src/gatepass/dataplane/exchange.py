"""The Exchange: one request's journey through the pipeline, and the Denial that may end it.

Each attribute is set by the stage named beside it; a stage that denies sets ``denial`` and the
stages after it step aside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gatepass.dataplane.http.server import IncomingRequest
from gatepass.dataplane.state import UpstreamEntry
from gatepass.metering.counters import Line, Reservation
from gatepass.metering.prices import ModelPrice
from gatepass.metering.ratelimit import Permit
from gatepass.model import Agent, LiveKey
from gatepass.policy.decision import Decision
from gatepass.providers import LlmRequest, Route, Usage

__all__ = ["Denial", "Exchange"]


@dataclass(frozen=True, slots=True)
class Denial:
    """A refusal: HTTP status, machine reason code, one human sentence; ``retry_after`` for 429."""

    status: int
    code: str
    message: str
    retry_after: float | None = None


@dataclass(slots=True)
class Exchange:
    request: IncomingRequest
    id: str  # x-gatepass-request-id
    started: float  # perf_counter at arrival
    now: datetime  # wall clock at arrival (UTC)
    # route
    upstream_name: str = ""
    path: str = ""  # after /{upstream}, percent-decoded: what policy matches
    target: bytes = b""  # after /{upstream}, as received (path and query): what is forwarded
    entry: UpstreamEntry | None = None
    route: Route | None = None
    # authenticate
    agent: Agent | None = None
    key: LiveKey | None = None
    key_digest: bytes = field(default=b"", repr=False)  # the HMAC of the presented key: its place in the state
    presented: bytes = field(default=b"", repr=False)  # the gatepass key as sent (never printed)
    # parse
    llm: LlmRequest | None = None
    body: bytes = b""  # the body to send upstream
    # authorize
    decision: Decision | None = None
    # leak scan: the agent's headers that go upstream (the credential is added to them); what was found
    # ("secret:NAME", "pattern:NAME", "canary:ID") and what was done
    up_headers: list[tuple[bytes, bytes]] | None = None
    leak: str | None = None
    leak_action: str | None = None
    redacted: int = 0  # vault secrets redacted from the response
    # rate limit, price, reserve
    permit: Permit | None = None
    price: ModelPrice | None = None
    lines: tuple[Line, ...] = ()
    reservation: Reservation | None = None
    # forward and meter
    status: int = 0
    usage: Usage | None = None
    usage_complete: bool = True
    cost: int = 0
    upstream_error: str | None = None
    client_gone: bool = False
    # outcome
    denial: Denial | None = None
    responded: bool = False

    def deny(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        if self.denial is None:
            self.denial = Denial(status, code, message, retry_after)
