"""The Exchange: one request's journey through the pipeline, and the Denial that may end it.

Each attribute is set by the stage named beside it; a stage that denies sets ``denial`` and the
stages after it step aside.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gatepass.dataplane.http.server import IncomingRequest
from gatepass.dataplane.state import UpstreamEntry
from gatepass.metering.counters import Reservation
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


class Exchange:
    """One request's state through the pipeline.

    A plain class, not a dataclass: the compiled build runs a dataclass's generated ``__init__`` in
    the interpreter, and one of these is made per request. Its repr names the request, never the
    presented key."""

    __slots__ = (
        "agent",
        "body",
        "client_gone",
        "cost",
        "decision",
        "denial",
        "entry",
        "id",
        "key",
        "key_digest",
        "leak",
        "leak_action",
        "lines",
        "llm",
        "now",
        "path",
        "permit",
        "presented",
        "price",
        "redacted",
        "request",
        "reservation",
        "responded",
        "route",
        "started",
        "status",
        "target",
        "up_headers",
        "upstream_error",
        "upstream_name",
        "usage",
        "usage_complete",
    )

    def __init__(self, request: IncomingRequest, id: str, started: float, now: datetime) -> None:
        self.request = request
        self.id = id  # x-gatepass-request-id
        self.started = started  # perf_counter at arrival
        self.now = now  # wall clock at arrival (UTC)
        # route
        self.upstream_name: str = ""
        self.path: str = ""  # after /{upstream}, percent-decoded: what policy matches
        self.target: bytes = b""  # after /{upstream}, as received (path and query): what is forwarded
        self.entry: UpstreamEntry | None = None
        self.route: Route | None = None
        # authenticate
        self.agent: Agent | None = None
        self.key: LiveKey | None = None
        self.key_digest: bytes = b""  # the HMAC of the presented key: its place in the state
        self.presented: bytes = b""  # the gatepass key as sent (never printed)
        # parse
        self.llm: LlmRequest | None = None
        self.body: bytes = b""  # the body to send upstream
        # authorize
        self.decision: Decision | None = None
        # leak scan: the agent's headers that go upstream (the credential is added to them); what was found
        # ("secret:NAME", "pattern:NAME", "canary:ID") and what was done
        self.up_headers: list[tuple[bytes, bytes]] | None = None
        self.leak: str | None = None
        self.leak_action: str | None = None
        self.redacted: int = 0  # vault secrets redacted from the response
        # rate limit, price, reserve
        self.permit: Permit | None = None
        self.price: ModelPrice | None = None
        self.reservation: Reservation | None = None
        # forward and meter
        self.status: int = 0
        self.usage: Usage | None = None
        self.usage_complete: bool = True
        self.cost: int = 0
        self.upstream_error: str | None = None
        self.client_gone: bool = False
        # outcome
        self.denial: Denial | None = None
        self.responded: bool = False

    def __repr__(self) -> str:
        denied = self.denial.code if self.denial is not None else None
        return f"<Exchange {self.id} {self.request.method} {self.upstream_name}{self.path} denied={denied}>"

    def deny(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        if self.denial is None:
            self.denial = Denial(status, code, message, retry_after)
