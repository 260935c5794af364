"""The gateway: one Exchange per request, through admission, forwarding, settlement and audit.

    authenticate -> authorize -> leak scan -> rate-limit -> reserve budget -> inject credential
      -> forward / stream back (meter usage, redact echoed vault secrets) -> settle cost -> audit

Fail closed: an exception anywhere refuses the request (500, audited) and is logged, never
swallowed. Every request gets exactly one audit record, durable before the response is
complete: before any byte for a refusal or a buffered response; for a stream, chunks flow as
they arrive and the final end-of-body is sent only once the record (with usage and cost) is
durable. "Durable" is what ``audit.durability`` says: written to the log (the default, fsynced
within ``sync_interval_ms``) or fsynced. A client that disconnects mid-stream does not stop the
metering: the upstream stream is read to its end and charged.
"""

from __future__ import annotations

import logging
import secrets
import time
from contextlib import suppress
from dataclasses import replace

from gatepass.audit import AuditEvent
from gatepass.dataplane import stages
from gatepass.dataplane.exchange import Exchange
from gatepass.dataplane.forward import downstream_headers, is_event_stream, with_credential
from gatepass.dataplane.http.server import ClientDisconnected, IncomingRequest, ResponseWriter
from gatepass.dataplane.parts import GatewayParts
from gatepass.dataplane.refusal import refusal_response
from gatepass.errors import AuditError, UpstreamConnectError, UpstreamError, UpstreamTimeoutError

__all__ = ["Gateway"]

log = logging.getLogger("gatepass.gateway")


class Gateway:
    def __init__(self, parts: GatewayParts) -> None:
        self.p = parts
        # Request ids: unique per process start (random prefix) and cheap to make (a counter).
        self._id_prefix = secrets.token_hex(6)
        self._count = 0

    async def handle(self, request: IncomingRequest, writer: ResponseWriter) -> None:
        p = self.p
        self._count += 1
        ex = Exchange(
            request=request, id=f"req_{self._id_prefix}{self._count:08x}", started=time.perf_counter(), now=p.clock()
        )
        p.metrics.in_flight += 1
        try:
            stages.admit(ex, p)
            if ex.denial is None and ex.key is not None and ex.key.uses_left is not None:
                await self._take_use(ex)
            if ex.denial is None:
                await self._forward(ex, writer)
        except Exception:
            log.exception("request %s failed inside the gateway; refused", ex.id)
            ex.deny(500, "internal_error", "gatepass could not complete the checks for this request; it was refused")
        finally:
            self._settle(ex)
            p.metrics.in_flight -= 1
        if not ex.responded:
            await self._refuse(ex, writer)

    # -- stages that await ---------------------------------------------------------------------
    async def _take_use(self, ex: Exchange) -> None:
        """A key with a use limit: the use is taken durably in the store before forwarding."""
        assert ex.key is not None
        record = ex.key
        taken = await self.p.spend.take_use(record.id, ex.now, ex.request.client_ip)
        if not taken:
            ex.deny(401, "key_used_up", f"key {record.id} has no uses left; issue a new one")
            return
        self.p.state.replace_key(ex.key_digest, replace(record, uses_left=(record.uses_left or 1) - 1))

    async def _forward(self, ex: Exchange, writer: ResponseWriter) -> None:
        entry = ex.entry
        assert entry is not None and ex.key is not None
        self.p.spend.touch(ex.key.id, ex.now, ex.request.client_ip)  # "last used" in gatepass key list
        if entry.credential is None and entry.upstream.auth.kind != "none":
            ex.deny(503, "upstream_misconfigured", entry.problem or f"upstream {entry.upstream.name} has no credential")
            return
        assert ex.up_headers is not None  # set by the leak-scan stage, which every forwarded request passed
        headers = with_credential(ex.up_headers, entry.credential)
        try:
            response = await self.p.pool.request(
                entry.origin, ex.request.method, entry.base_path + ex.target, headers, ex.body
            )
        except UpstreamError as exc:
            self._upstream_failed(ex, exc, sent=not isinstance(exc, UpstreamConnectError))
            return
        ex.status = response.status
        route = ex.route
        metered = route is not None and route.metered and response.status < 300
        out_headers = downstream_headers(response.headers, ex.id.encode())
        if metered and not is_event_stream(response.headers):
            try:
                body = await response.read(self.p.max_response_bytes)
            except UpstreamError as exc:
                self._upstream_failed(ex, exc, sent=True)
                return
            ex.usage = entry.provider.usage_from_body(route, body) if route is not None else None
            if self.p.leaks is not None:
                body, ex.redacted = self.p.leaks.response_body(body)
            self._settle(ex)
            if not await self._audit(ex):
                return
            ex.responded = True
            try:
                writer.send(response.status, out_headers, body)
            except ClientDisconnected:
                ex.client_gone = True  # audited and charged already; nobody left to tell
            return
        meter = entry.provider.stream_meter(route, ex.llm) if metered and route is not None and ex.llm else None
        redactor = self.p.leaks.response_stream(is_event_stream(response.headers)) if self.p.leaks else None
        writer.start(response.status, out_headers)
        ex.responded = True
        try:
            async for chunk in response:
                data = meter.feed(chunk) if meter is not None else chunk
                if redactor is not None and data:
                    data = redactor.feed(data)
                if data and not ex.client_gone:
                    try:
                        await writer.write(data)
                    except ClientDisconnected:
                        ex.client_gone = True  # keep reading: what the upstream produces is charged
        except UpstreamError as exc:
            ex.upstream_error = exc.message
            ex.usage_complete = False
        tail = b""
        if meter is not None:
            tail = meter.flush()
            ex.usage = meter.finish()
            ex.usage_complete = ex.usage_complete and meter.complete
        if redactor is not None:
            tail = redactor.feed(tail) + redactor.flush() if tail else redactor.flush()
            ex.redacted = redactor.redacted
        self._settle(ex)
        durable = await self._audit(ex)
        if durable and ex.upstream_error is None and not ex.client_gone:
            try:
                await writer.end(tail)  # the end of the body goes out only once the record is durable
            except ClientDisconnected:
                ex.client_gone = True
        else:
            writer.abort()

    def _upstream_failed(self, ex: Exchange, exc: UpstreamError, *, sent: bool) -> None:
        ex.upstream_error = exc.message
        ex.usage_complete = False
        if not sent and ex.reservation is not None:
            self.p.counters.release(ex.reservation)  # never reached the upstream: it cost nothing
        status, code = (
            (504, "upstream_timeout") if isinstance(exc, UpstreamTimeoutError) else (502, "upstream_unavailable")
        )
        ex.deny(status, code, exc.message)

    # -- settle, audit, refuse -------------------------------------------------------------------
    def _settle(self, ex: Exchange) -> None:
        """Turn the reservation into the real cost (once); give back rate-limit slots."""
        p = self.p
        reservation = ex.reservation
        if reservation is not None and not reservation.done:
            if ex.usage is not None and ex.usage_complete and ex.price is not None and 200 <= ex.status < 300:
                cost = ex.price.cost_micros(ex.usage)
            elif ex.upstream_error is not None or (200 <= ex.status < 300):
                cost = reservation.amount  # sent, but usage unknown: charge the worst case, never less
            else:
                cost = 0  # the provider refused it: providers do not bill refusals
            p.counters.settle(reservation, cost)
            ex.cost = cost
            if cost and p.on_settled is not None:
                p.on_settled(ex)
        if ex.permit is not None:
            if ex.usage is not None:
                p.limiter.add_tokens(
                    ex.permit,
                    ex.usage.input_tokens
                    + ex.usage.output_tokens
                    + ex.usage.cache_write_tokens
                    + ex.usage.cache_read_tokens,
                )
            p.limiter.release(ex.permit)
            ex.permit = None

    def _event(self, ex: Exchange) -> AuditEvent:
        denial = ex.denial
        decision = ex.decision
        agent, key, llm, usage = ex.agent, ex.key, ex.llm, ex.usage
        refused = denial is not None and not ex.responded
        # Plain str, int and bool values only: the record's check takes its fast path.
        meta: dict[str, object] = {
            "request_id": ex.id,
            "method": ex.request.method,
            "path": ex.path,
            "status": denial.status if refused and denial else ex.status,
            "client_ip": ex.request.client_ip,
            "latency_us": int((time.perf_counter() - ex.started) * 1_000_000),
            "cost_micros": ex.cost,
        }
        if agent is not None and key is not None:
            meta["agent_id"] = agent.id
            meta["key"] = key.id
        if llm is not None:
            meta["model"] = llm.model
            meta["stream"] = llm.stream
        if usage is not None:
            meta["input_tokens"] = usage.input_tokens
            meta["output_tokens"] = usage.output_tokens
            if usage.cache_write_tokens or usage.cache_read_tokens:
                meta["cache_write_tokens"] = usage.cache_write_tokens
                meta["cache_read_tokens"] = usage.cache_read_tokens
        if ex.cost:
            meta["t"] = int(ex.now.timestamp())  # when it was charged: replay finds its budget periods from this
        if not ex.usage_complete:
            meta["usage_complete"] = False
        if ex.upstream_error:
            meta["upstream_error"] = ex.upstream_error
        if ex.client_gone:
            meta["client_disconnected"] = True
        if ex.leak is not None:
            meta["leak"] = ex.leak
            meta["leak_action"] = ex.leak_action or "block"
        if ex.redacted:
            meta["response_redacted"] = ex.redacted
        if decision is not None and decision.report_only:
            meta["report_only"] = str(decision.reason)
        if refused and denial is not None:
            outcome, reason = "deny", denial.code
        else:
            # str() of a StrEnum member is its value as a plain str, without Enum.value's Python frame.
            outcome, reason = "allow", str(decision.reason) if decision else "allowed"
        return AuditEvent(
            f"agent:{agent.name}" if agent else "anonymous", "request", ex.upstream_name or "-", outcome, reason, meta
        )

    async def _audit(self, ex: Exchange) -> bool:
        """Write the request's record and wait until it is durable; False (and a denial) if it failed."""
        spend = self.p.spend
        spend.auditing += 1
        try:
            record = await self.p.audit.write(self._event(ex))
        except AuditError:
            log.exception("audit write failed for %s; refusing", ex.id)
            ex.deny(500, "audit_unavailable", "gatepass could not record this request in its audit log; it was refused")
            return False
        finally:
            spend.auditing -= 1
        if ex.cost and ex.reservation is not None and ex.agent is not None and ex.key is not None:
            spend.charge(ex.agent.id, ex.key.id, ex.reservation.day, ex.cost, record.seq)
        self.p.metrics.observe(ex)
        return True

    async def _refuse(self, ex: Exchange, writer: ResponseWriter) -> None:
        assert ex.denial is not None
        await self._audit(ex)  # a refusal is recorded too; if even that fails, it is still a refusal
        provider = ex.entry.provider if ex.entry is not None else None
        status, headers, body = refusal_response(ex.denial, ex.id, provider)
        with suppress(ClientDisconnected):
            writer.send(status, headers, body)
