"""The egress proxy: agents' HTTP_PROXY and HTTPS_PROXY, on the data-plane listener.

::

    HTTPS_PROXY=http://AGENT:KEY@127.0.0.1:8790   CONNECT api.example.com:443   -> a tunnel
    HTTP_PROXY=http://AGENT:KEY@127.0.0.1:8790    GET http://example.com/x      -> forwarded

One :class:`EgressFlow` per request, through these steps; the first that refuses sets ``denial``
(status, reason code, sentence) and the rest step aside::

    authenticate (Proxy-Authorization) -> read the target -> allowlist (report mode lets a miss pass)
      -> bound on open tunnels -> leak scan (plain HTTP only) -> resolve, refuse internal addresses
      -> connect to a checked address, and audit (awaited) -> 200 + tunnel, or forward and stream back
      -> closing record

Every decision is one ``egress`` audit record, durable (as ``audit.durability`` says: written, or
fsynced) before its effect: before the 200 of a CONNECT, before a forwarded request is written
upstream. The connect to a checked address runs
while that record is written (the effect waits for both), so the record's latency hides behind the
network's. When a tunnel or forwarded request ends, an ``egress.close`` record gives how it ended
(``client``, ``upstream``, ``idle``, ``complete``, or the reason code of a failed connect or
exchange, answered 502/504), its bytes each way and its duration. Credential and address (SSRF)
refusals hold in report mode too; only allowlist misses are let through there. A tunnel carries
TLS the proxy cannot read, so the leak scan sees plain-HTTP requests only.
Fail closed: an exception refuses the request (500) and is logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

from gatepass.audit import AuditEvent
from gatepass.config import EgressConfig
from gatepass.dataplane.egresscheck import (
    EgressDecision,
    Target,
    authenticate,
    decide,
    forward_headers,
    parse_absolute_target,
    parse_connect_target,
    response_headers,
)
from gatepass.dataplane.exchange import Denial
from gatepass.dataplane.forward import body_encoded
from gatepass.dataplane.http import (
    ClientDisconnected,
    Handler,
    IncomingRequest,
    Origin,
    ResponseWriter,
    TunnelUpstream,
    connect_address,
)
from gatepass.dataplane.http.client import frame_request
from gatepass.dataplane.http.reader import split_target
from gatepass.dataplane.http.upstream import UpstreamConnection
from gatepass.dataplane.leaks import ENCODED_BODY
from gatepass.dataplane.parts import GatewayParts
from gatepass.dataplane.refusal import refusal_response
from gatepass.errors import (
    AuditError,
    UpstreamConnectError,
    UpstreamConnectTimeoutError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gatepass.model import Agent, LiveKey
from gatepass.netguard import IPAddress, NetGuard, parse_host, parse_networks

__all__ = ["EgressFlow", "EgressProxy", "EgressScan", "dispatch"]

log = logging.getLogger("gatepass.egress")

EgressScan = Callable[[Agent, LiveKey, bytes], tuple[str, str, str] | None]
"""``scan(agent, key, request_bytes)``: (reason code, sentence, what was found for the audit record) to
block a plain-HTTP request, or None."""

U = TypeVar("U", TunnelUpstream, UpstreamConnection)

_RETRYABLE: Final = frozenset({"too_many_tunnels", "host_not_found"})  # besides refusal.RETRYABLE


@dataclass(slots=True)
class EgressFlow:
    """One proxy request; each attribute is set by the step named beside it."""

    request: IncomingRequest
    id: str  # x-gatepass-request-id
    started: float  # perf_counter at arrival
    now: datetime  # wall clock at arrival (UTC)
    target: Target | None = None  # read the target
    agent: Agent | None = None  # authenticate
    key: LiveKey | None = None  # authenticate
    decision: EgressDecision | None = None  # allowlist
    held: bool = False  # bound: the flow holds one of the open-tunnel slots
    leak: str | None = None  # leak scan: what was found ("secret:NAME", "pattern:NAME", "canary:ID"), never the value
    data: Sequence[bytes | bytearray] = ()  # forwarded request as written upstream (head and body)
    addresses: Sequence[IPAddress] = ()  # resolve: all checked
    address: IPAddress | None = None  # connect (or the address refused)
    category: str | None = None  # why an address was refused ("loopback", "private", ...)
    denial: Denial | None = None
    responded: bool = False

    @property
    def connect(self) -> bool:
        return self.request.method == "CONNECT"

    def deny(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        self.denial = Denial(status, code, message, retry_after)


class EgressProxy:
    """Serves CONNECT and absolute-form requests for agents; see the module docstring."""

    def __init__(
        self,
        parts: GatewayParts,
        config: EgressConfig = EgressConfig(),  # noqa: B008 - frozen, so one shared default is safe
        *,
        scan: EgressScan | None = None,
    ) -> None:
        """``scan`` is called on each plain-HTTP request (head and body, as they would go upstream)."""
        self.p = parts
        self.config = config
        self.guard = NetGuard(parse_networks(config.allow_networks), config.connect_timeout)
        self.scan = scan
        self.open = 0
        """Tunnels and forwarded requests open now."""
        self._open_by_agent: dict[str, int] = {}
        self._local: frozenset[tuple[str, int]] = frozenset()
        self._id_prefix = secrets.token_hex(6)
        self._count = 0

    @staticmethod
    def handles(request: IncomingRequest) -> bool:
        """True for proxy requests: CONNECT, or a target that is a whole URL."""
        return request.method == "CONNECT" or (request.target[:1] != b"/" and request.target != b"*")

    def serve_at(self, host: str, port: int) -> None:
        """Where the data plane listens: a whole-URL request for that address is the gateway's own
        (an SDK with HTTP_PROXY set and no NO_PROXY sends its gateway calls through the proxy)."""
        listen = parse_host(host)
        names = {listen.name}
        if listen.name == "localhost" or (
            listen.ip is not None and (listen.ip.is_loopback or listen.ip.is_unspecified)
        ):
            names |= {"127.0.0.1", "::1", "localhost"}
        self._local = frozenset((name, port) for name in names)

    def as_local(self, request: IncomingRequest) -> IncomingRequest | None:
        """The request in origin form when its URL names the gateway itself, else None."""
        if request.method == "CONNECT" or not self._local:
            return None
        target = parse_absolute_target(request.target, request.header(b"host"))
        if isinstance(target, Denial) or (target.host.name, target.port) not in self._local:
            return None
        path, query = split_target(target.path)
        return request.with_target(target.path, path, query)

    async def handle(self, request: IncomingRequest, writer: ResponseWriter) -> None:
        self._count += 1
        flow = EgressFlow(request, f"req_{self._id_prefix}{self._count:08x}", time.perf_counter(), self.p.clock())
        try:
            self._admit(flow)
            if flow.denial is None:
                await self._resolve(flow)
            if flow.denial is None:
                await (self._tunnel(flow, writer) if flow.connect else self._forward(flow, writer))
        except Exception:
            log.exception("proxy request %s failed inside the gateway; refused", flow.id)
            flow.deny(500, "internal_error", "gatepass could not complete the checks for this request; it was refused")
        finally:
            self._release(flow)
        if not flow.responded:
            # A refusal is recorded too; if even that fails, it is still a refusal.
            await self._write(flow, self._decision_event(flow))
            self._send_refusal(flow, writer)

    # -- checks --------------------------------------------------------------------------------
    def _admit(self, flow: EgressFlow) -> None:
        """Credentials, target, allowlist, the bound on open tunnels, and the leak scan: no I/O."""
        request, state = flow.request, self.p.state
        if flow.connect:
            target = parse_connect_target(request.target)
        else:
            target = parse_absolute_target(request.target, request.header(b"host"))
        if not isinstance(target, Denial):
            flow.target = target
        found = authenticate(request, state, self.p.digest, flow.now)
        if isinstance(found, Denial):
            flow.denial = found
            return
        agent, key = flow.agent, flow.key = found
        if isinstance(target, Denial):
            flow.denial = target
            return
        decision = flow.decision = decide(agent, state.egress.get(agent.id, ()), target)
        if not decision.allowed:
            flow.deny(403, decision.reason, decision.sentence)
            return
        config = self.config
        mine = self._open_by_agent.get(agent.id, 0)
        if self.open >= config.max_tunnels or mine >= config.max_tunnels_per_agent:
            if self.open >= config.max_tunnels:
                who, limit = "the gateway", config.max_tunnels
            else:
                who, limit = f"agent {agent.name}", config.max_tunnels_per_agent
            flow.deny(429, "too_many_tunnels", f"{who} has {limit} proxy connections open: retry later", 1.0)
            return
        self.open += 1
        self.p.metrics.egress_open = self.open
        self._open_by_agent[agent.id] = mine + 1
        flow.held = True
        if not flow.connect:
            self._frame(flow, agent, key, target)

    def _frame(self, flow: EgressFlow, agent: Agent, key: LiveKey, target: Target) -> None:
        """The request as it will go upstream, leak-scanned before anything is resolved or sent."""
        request = flow.request
        if body_encoded(request.headers):
            flow.deny(415, "encoded_body", ENCODED_BODY)
            return
        origin = Origin("http", target.host.name, target.port)
        try:
            flow.data = frame_request(
                origin, request.method, target.path, forward_headers(request.headers), request.body
            )
        except ValueError as exc:
            flow.deny(400, "bad_request", f"the request cannot be forwarded: {exc}")
            return
        if self.scan is not None:
            blocked = self.scan(agent, key, b"".join(flow.data))
            if blocked is not None:
                code, sentence, flow.leak = blocked
                flow.deny(403, code, sentence)

    async def _resolve(self, flow: EgressFlow) -> None:
        """Every address of the host, each checked: one internal address refuses the host."""
        assert flow.target is not None
        host = flow.target.host
        try:
            addresses = await self.guard.resolve(host, flow.target.port)
        except UpstreamConnectTimeoutError as exc:
            flow.deny(504, "upstream_timeout", exc.message)
            return
        except UpstreamConnectError as exc:
            flow.deny(502, "host_not_found", exc.message)
            return
        for address in addresses:
            category = self.guard.refusal(address)
            if category is not None:
                flow.address, flow.category = address, category
                flow.deny(403, "address_not_allowed", self.guard.explain(host, address, category))
                return
        flow.addresses = addresses

    async def _connect(self, flow: EgressFlow, factory: Callable[[], U]) -> U | None:
        """Connect to the first checked address that answers (never to the name); None: refused."""
        assert flow.target is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.connect_timeout
        failure: UpstreamConnectError | None = None
        for address in flow.addresses:
            try:
                timeout = max(0.001, deadline - loop.time())
                conn = await connect_address(
                    str(address), flow.target.port, factory, timeout=timeout, label=flow.target.label
                )
            except UpstreamConnectTimeoutError as exc:
                failure = exc
                break
            except UpstreamConnectError as exc:
                failure = exc
                continue
            flow.address = address
            return conn
        assert failure is not None
        if isinstance(failure, UpstreamConnectTimeoutError):
            flow.deny(504, "upstream_timeout", failure.message)
        else:
            flow.deny(502, "upstream_unavailable", failure.message)
        return None

    # -- effects -------------------------------------------------------------------------------
    async def _open(self, flow: EgressFlow, writer: ResponseWriter, factory: Callable[[], U]) -> U | None:
        """Connect to a checked address while the decision's record is made durable; the effect waits
        for both. None when either failed: a failed connect is answered here (502/504, and a closing
        record), a failed record is left for :meth:`handle` to refuse."""
        event = self._decision_event(flow)  # made before the connect changes the flow
        connecting = asyncio.ensure_future(self._connect(flow, factory))
        try:
            durable = await self._write(flow, event)
            conn = await connecting
        except BaseException:
            connecting.cancel()
            connecting.add_done_callback(_close_unused)
            raise
        if not durable:
            if conn is not None:
                conn.close()
            flow.deny(
                500, "audit_unavailable", "gatepass could not record this request in its audit log; it was refused"
            )
            return None
        if conn is None:
            assert flow.denial is not None
            self._send_refusal(flow, writer)
            seconds = time.perf_counter() - flow.started
            await self._close_record(flow, flow.denial.code, 0, 0, seconds, flow.denial.status)
            return None
        self._touch(flow)
        return conn

    async def _tunnel(self, flow: EgressFlow, writer: ResponseWriter) -> None:
        upstream = await self._open(flow, writer, TunnelUpstream)
        if upstream is None:
            return
        flow.responded = True
        try:
            tunnel = writer.tunnel(
                upstream, [(b"x-gatepass-request-id", flow.id.encode())], idle_timeout=self.config.idle_timeout
            )
        except ClientDisconnected:  # gone while its CONNECT was decided (the upstream is closed)
            await self._close_record(flow, "client_disconnected", 0, 0, time.perf_counter() - flow.started)
            return
        try:
            await tunnel.wait()
        finally:
            stats = tunnel.stats
            await self._close_record(flow, stats.closed_by, stats.bytes_up, stats.bytes_down, stats.seconds)

    async def _forward(self, flow: EgressFlow, writer: ResponseWriter) -> None:
        assert flow.target is not None
        label, read_timeout = flow.target.label, self.config.idle_timeout

        def factory() -> UpstreamConnection:
            return UpstreamConnection(label, read_timeout, UpstreamConnection.close, _forget)

        conn = await self._open(flow, writer, factory)
        if conn is None:
            return
        flow.responded = True
        sent = sum(len(piece) for piece in flow.data)
        try:
            response = await conn.exchange(list(flow.data), flow.request.method == "HEAD")
        except UpstreamError as exc:
            timeout = isinstance(exc, UpstreamTimeoutError)
            status, code = (504, "upstream_timeout") if timeout else (502, "upstream_unavailable")
            flow.deny(status, code, exc.message)
            self._send_refusal(flow, writer)
            await self._close_record(flow, code, sent, 0, time.perf_counter() - flow.started, status)
            return
        how, received = "complete", 0
        try:
            writer.start(response.status, response_headers(response.headers, flow.id.encode()))
            async for chunk in response:
                received += len(chunk)
                await writer.write(chunk)
            await writer.end()
        except UpstreamError as exc:
            how = "upstream_timeout" if isinstance(exc, UpstreamTimeoutError) else "upstream_unavailable"
            writer.abort()
        except ClientDisconnected:
            how = "client_disconnected"
            await response.aclose()
        await self._close_record(flow, how, sent, received, time.perf_counter() - flow.started, response.status)

    # -- bookkeeping ---------------------------------------------------------------------------
    def _touch(self, flow: EgressFlow) -> None:
        assert flow.key is not None
        self.p.spend.touch(flow.key.id, flow.now, flow.request.client_ip)  # "last used" in gatepass key list

    def _release(self, flow: EgressFlow) -> None:
        if flow.held and flow.agent is not None:
            flow.held = False
            self.open -= 1
            self.p.metrics.egress_open = self.open
            left = self._open_by_agent[flow.agent.id] - 1
            if left:
                self._open_by_agent[flow.agent.id] = left
            else:
                del self._open_by_agent[flow.agent.id]

    def _send_refusal(self, flow: EgressFlow, writer: ResponseWriter) -> None:
        assert flow.denial is not None
        flow.responded = True
        status, headers, body = refusal_response(flow.denial, flow.id, None)
        if flow.denial.code in _RETRYABLE:
            headers = [(name, value) for name, value in headers if name != b"x-should-retry"]
        if status == 407:
            headers.append((b"proxy-authenticate", b'Basic realm="gatepass"'))
        with suppress(ClientDisconnected):
            writer.send(status, headers, body)

    def _meta(self, flow: EgressFlow) -> dict[str, object]:
        meta: dict[str, object] = {
            "request_id": flow.id,
            "method": flow.request.method,
            "client_ip": flow.request.client_ip,
        }
        if flow.agent is not None and flow.key is not None:
            meta["agent_id"] = flow.agent.id
            meta["key"] = flow.key.id
        if flow.target is not None:
            meta["port"] = flow.target.port
        if flow.address is not None:
            meta["address"] = str(flow.address)
        return meta

    def _actor(self, flow: EgressFlow) -> str:
        return f"agent:{flow.agent.name}" if flow.agent is not None else "anonymous"

    def _decision_event(self, flow: EgressFlow) -> AuditEvent:
        """The ``egress`` record of the flow's decision (allow, deny, or allow in report mode)."""
        denial, decision = flow.denial, flow.decision
        meta = self._meta(flow)
        if flow.target is not None and not flow.connect:
            meta["path"] = flow.target.path.partition(b"?")[0][:300].decode("latin-1")  # never the query
        if flow.category is not None:
            meta["address_category"] = flow.category
        if flow.leak is not None:
            meta["leak"] = flow.leak
        if decision is not None and decision.rule_id is not None:
            meta["rule"] = decision.rule_id
        if decision is not None and decision.report_only:
            meta["report_only"] = decision.reason
        if denial is not None:
            meta["status"] = denial.status
            outcome, reason = "deny", denial.code
        else:
            meta["addresses"] = [str(address) for address in flow.addresses]
            outcome, reason = "allow", decision.reason if decision is not None else "allowed"
        self.p.metrics.observe_egress(outcome, reason)
        target = flow.target.label if flow.target is not None else "-"
        return AuditEvent(self._actor(flow), "egress", target, outcome, reason, meta)

    async def _write(self, flow: EgressFlow, event: AuditEvent) -> bool:
        """Write a record and wait until it is durable; False if it could not be."""
        try:
            await self.p.audit.write(event)
        except AuditError:
            log.exception("audit write failed for %s", flow.id)
            return False
        return True

    async def _close_record(
        self, flow: EgressFlow, how: str, up: int, down: int, seconds: float, status: int | None = None
    ) -> None:
        """The closing record of a tunnel or forwarded request (its effect is over: a failure is only logged)."""
        meta = self._meta(flow)
        meta.update(bytes_up=up, bytes_down=down, duration_ms=int(seconds * 1000))
        self.p.metrics.egress_bytes[0] += up
        self.p.metrics.egress_bytes[1] += down
        if status is not None:
            meta["status"] = status
        target = flow.target.label if flow.target is not None else "-"
        try:
            await self.p.audit.write(AuditEvent(self._actor(flow), "egress.close", target, "ok", how, meta))
        except AuditError:
            log.exception("could not record the end of %s", flow.id)


def _close_unused(connecting: asyncio.Future[U | None]) -> None:
    """A connection opened for a flow that failed meanwhile: nobody will use it."""
    if not connecting.cancelled() and connecting.exception() is None:
        opened = connecting.result()
        if opened is not None:
            opened.close()


def _forget(conn: UpstreamConnection) -> None:
    """An upstream connection of one forwarded request belongs to no pool."""


def dispatch(gateway: Handler, proxy: EgressProxy) -> Handler:
    """The data plane's handler: proxy requests (CONNECT, absolute-form) to ``proxy``, the rest to ``gateway``."""
    proxied, handles, as_local = proxy.handle, proxy.handles, proxy.as_local

    def handle(request: IncomingRequest, writer: ResponseWriter) -> Awaitable[None]:
        # Not a coroutine of its own: it picks the handler whose coroutine the server awaits.
        if handles(request):
            local = as_local(request)
            if local is None:
                return proxied(request, writer)
            request = local
        return gateway(request, writer)

    return handle
