"""``gatepass serve``: run the data plane and the control plane for one home.

One gateway process owns a home: it holds ``gateway.lock`` for as long as it runs, and a second
one is refused with the first one's pid. On SIGTERM or SIGINT it stops accepting, lets in-flight
requests finish (up to ``shutdown_grace`` seconds; what is still running then is settled and
audited as it ends), writes the spend it holds, flushes the audit log and releases the lock.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import os
import signal
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import web

from gatepass.alerts import FanoutNotifier, LoopBreaker, Notifier, SmtpNotifier, WebhookNotifier
from gatepass.audit import AsyncAuditWriter, AuditEvent
from gatepass.config import parse_listen
from gatepass.control.adminapi import make_admin_app
from gatepass.control.app import Gatepass
from gatepass.control.runtime import (
    GatewayInfo,
    admin_token,
    read_gateway_info,
    remove_gateway_info,
    webhook_secret,
    write_gateway_info,
)
from gatepass.control.spendreport import spend_report
from gatepass.dataplane.alerting import AlertEngine
from gatepass.dataplane.egress import EgressProxy, dispatch
from gatepass.dataplane.exchange import Denial
from gatepass.dataplane.gateway import Gateway
from gatepass.dataplane.http.client import UpstreamPool
from gatepass.dataplane.http.server import HttpServer, ServerLimits, new_event_loop, start_server
from gatepass.dataplane.leaks import LeakGuard
from gatepass.dataplane.metrics import Metrics
from gatepass.dataplane.parts import GatewayParts, KeyDigests
from gatepass.dataplane.refusal import refusal_response
from gatepass.dataplane.spend import SpendLedger
from gatepass.dataplane.state import RuntimeState
from gatepass.errors import GatepassError
from gatepass.metering.counters import MemoryCounters
from gatepass.metering.prices import PriceTable
from gatepass.metering.ratelimit import RateLimiter
from gatepass.sensitive import Secret
from gatepass.units import Period, period_start

__all__ = ["GatewayService", "serve"]

log = logging.getLogger("gatepass.serve")

_FORGET_ENDED_EVERY = 3600.0  # seconds between sweeps of keys that ended long enough ago


class GatewayService:
    """A started gateway: both listeners, the in-memory state, and the background tasks."""

    def __init__(self, app: Gatepass, *, listen: str | None = None, admin_listen: str | None = None) -> None:
        self.app = app
        config = app.config.gateway
        self.listen = parse_listen(listen or config.listen)
        self.admin_listen = parse_listen(admin_listen or config.admin_listen)
        self.metrics = Metrics()
        self.state = RuntimeState(app.vault)
        self.leaks = LeakGuard(self.state, app.vault)
        self.counters = MemoryCounters()
        self.state.on_forget = self.counters.forget  # agents and keys gone, or ended long ago
        self.spend = SpendLedger(app.store)
        audit = app.config.audit
        self.audit = AsyncAuditWriter(
            app.audit, durable=audit.durability == "fsync", sync_interval=audit.sync_interval_ms / 1000
        )
        self.pool = UpstreamPool(connect_timeout=config.connect_timeout, read_timeout=config.read_timeout)
        self.started = time.monotonic()
        self._lock_fd: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh_lock = asyncio.Lock()
        self.data_server: HttpServer | None = None
        self._ports = (0, 0)  # as bound
        self._admin_runner: web.AppRunner | None = None

    # -- start and stop -----------------------------------------------------------------------
    def _take_lock(self) -> None:
        path = self.app.home.path / "gateway.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            other = read_gateway_info(self.app.home)
            who = f"pid {other.pid}, listening on {other.listen}" if other else "another process"
            raise GatepassError(
                f"a gateway ({who}) already serves {self.app.home.path}: stop it first, or use another GATEPASS_HOME"
            ) from None
        self._lock_fd = fd

    async def start(self) -> None:
        self._take_lock()
        app = self.app
        app.notify_changes = False  # the gateway applies its own changes; no need to call itself
        config = app.config.gateway
        try:
            with app.read() as tx:
                self.state.load(tx, ended_after=self._ended_keys_cutoff())
            self.leaks.current()
            with app.read() as tx:
                now = app.now()
                since = min(period_start(Period.WEEK, now), period_start(Period.MONTH, now))
                held_keys = {key.id for key in self.state.keys.values()}
                agents = self.state.agents

                def held(scope: str, owner_id: str) -> bool:
                    return owner_id in (agents if scope == "agent" else held_keys)

                replayed = SpendLedger.load(tx, self.counters, app.home.audit_dir, now, held)
            self.alerts = AlertEngine(app, self.state, self.counters, self.audit, _notifier(app), self.refresh)
            with app.read() as tx:
                self.alerts.load(tx, since)
            self.gateway = Gateway(
                GatewayParts(
                    state=self.state,
                    digest=KeyDigests(app.vault),
                    prices=PriceTable.load(_price_overrides(app)),
                    counters=self.counters,
                    limiter=RateLimiter(),
                    audit=self.audit,
                    pool=self.pool,
                    spend=self.spend,
                    metrics=self.metrics,
                    breaker=_breaker(app),
                    max_response_bytes=config.max_response_bytes,
                    clock=app.clock,
                    on_settled=self.alerts.on_settled,
                    on_loop=self.alerts.on_loop,
                    leaks=self.leaks,
                    on_canary=self.alerts.on_canary,
                )
            )
            self.egress = EgressProxy(
                self.gateway.p, app.config.egress, scan=self.leaks.egress_scan(self.alerts.on_canary)
            )
            self.data_server = await start_server(
                dispatch(self.gateway.handle, self.egress),
                *self.listen,
                limits=ServerLimits(max_body_bytes=config.max_body_bytes),
                error_body=self._protocol_error_body,
                allow_connect=True,
            )
            self.egress.serve_at(self.listen[0], self.data_server.port)
            token = admin_token(app.home, create=True)
            assert token is not None
            self._admin_runner = web.AppRunner(make_admin_app(self, token), access_log=None)
            await self._admin_runner.setup()
            await web.TCPSite(self._admin_runner, *self.admin_listen).start()
            self._ports = (self.data_server.port, self._admin_runner.addresses[0][1])
            self._tasks = [
                asyncio.create_task(self.spend.run()),
                asyncio.create_task(self._poll_changes()),
                asyncio.create_task(self._forget_ended_keys_hourly()),
            ]
            write_gateway_info(
                app.home, GatewayInfo(os.getpid(), self.data_url, self.admin_url, datetime.now(UTC).isoformat())
            )
            await self.audit.write(
                AuditEvent(
                    actor=app.actor,
                    action="gateway.start",
                    target=self.data_url,
                    decision="ok",
                    reason="admin",
                    meta={
                        "admin": self.admin_url,
                        "pid": os.getpid(),
                        "agents": len(self.state.agents),
                        "keys": len(self.state.keys),
                        "spend_replayed": replayed,
                    },
                )
            )
        except BaseException:
            await self._cleanup()
            raise

    @property
    def data_url(self) -> str:
        """The data plane's URL (with the real port once listening, also after port 0)."""
        host, port = self.listen
        return f"http://{_host(host)}:{self._ports[0] or port}"

    @property
    def admin_url(self) -> str:
        host, port = self.admin_listen
        return f"http://{_host(host)}:{self._ports[1] or port}"

    async def stop(self) -> None:
        grace = self.app.config.gateway.shutdown_grace
        if self.data_server is not None:
            await self.data_server.close(grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.alerts.drain()
        await self.spend.close()
        await self.audit.write(
            AuditEvent(
                actor=self.app.actor,
                action="gateway.stop",
                target=self.data_url,
                decision="ok",
                reason="admin",
                meta={},
            )
        )
        await self._cleanup()

    async def _cleanup(self) -> None:
        await self.audit.close()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
            self._admin_runner = None
        await self.pool.close()
        if self._lock_fd is not None:
            remove_gateway_info(self.app.home)
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the change feed --------------------------------------------------------------------------
    async def refresh(self) -> int:
        """Apply what changed in the store since the last look (called on notification and by the poll)."""
        async with self._refresh_lock:
            with self.app.read() as tx:
                changes = tx.changes_since(self.state.seq)
                for change in changes:
                    if change.kind == "alerts":
                        self.alerts.reload(tx, change.ref)
                applied = self.state.apply(tx, changes) if changes else 0
            self.leaks.current()
            return applied

    async def _poll_changes(self) -> None:
        interval = self.app.config.gateway.change_poll_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("could not read the change feed; will retry")

    def _ended_keys_cutoff(self, now: datetime | None = None) -> datetime:
        return (now or self.app.now()) - timedelta(days=self.app.config.gateway.ended_keys_kept_days)

    def forget_ended_keys(self, now: datetime | None = None) -> int:
        """Drop from memory the keys that ended more than ``gateway.ended_keys_kept_days`` before
        ``now`` (the app's clock by default), and what the counters hold for them; returns how
        many. (On the event loop: no request is admitted meanwhile.)"""
        gone = self.state.forget_ended(self._ended_keys_cutoff(now))  # and from the counters: see __init__
        if gone:
            log.info(
                "forgot %d keys that ended more than %g days ago",
                len(gone),
                self.app.config.gateway.ended_keys_kept_days,
            )
        return len(gone)

    async def _forget_ended_keys_hourly(self) -> None:
        while True:
            await asyncio.sleep(_FORGET_ENDED_EVERY)
            try:
                self.forget_ended_keys()
            except Exception:
                log.exception("could not forget ended keys; will retry")

    # -- reports ----------------------------------------------------------------------------------
    def spend_report(self) -> dict[str, Any]:
        keys = [k for k in self.state.keys.values()]
        now = self.app.now()
        return spend_report(
            sorted(self.state.agents.values(), key=lambda a: a.name),
            keys,
            now,
            partial(self.counters.totals, now=now),
            source="gateway",
        )

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "listen": self.data_url,
            "admin": self.admin_url,
            "uptime_seconds": round(time.monotonic() - self.started, 1),
            "in_flight": self.data_server.in_flight if self.data_server else 0,
            "agents": len(self.state.agents),
            "keys": len(self.state.keys),
            "upstreams": sorted(self.state.upstreams),
            "change_seq": self.state.seq,
        }

    def _protocol_error_body(
        self, path: str, status: int, code: str, message: str
    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        name = path.lstrip("/").split("/", 1)[0]
        entry = self.state.upstreams.get(name)
        _, headers, body = refusal_response(
            Denial(status, code, message), "req_protocol", entry.provider if entry else None
        )
        return headers, body


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _notifier(app: Gatepass) -> Notifier | None:
    config = app.config.alerts
    channels: list[Notifier] = []
    if config.webhook_url:
        channels.append(WebhookNotifier(config.webhook_url, webhook_secret(app.home)))
    if config.smtp_host:
        password = app.env.get("GATEPASS_SMTP_PASSWORD")
        channels.append(
            SmtpNotifier(
                config.smtp_host,
                config.smtp_port,
                config.smtp_from,
                starttls=config.smtp_starttls,
                username=config.smtp_username or None,
                password=Secret(password) if password else None,
            )
        )
    return FanoutNotifier(channels) if channels else None


def _breaker(app: Gatepass) -> LoopBreaker | None:
    config = app.config.alerts
    if config.loop_max_repeats == 0:
        return None
    return LoopBreaker(config.loop_window_seconds, config.loop_max_repeats)


def _price_overrides(app: Gatepass) -> dict[str, Any]:
    return dict(app.config.prices)


def serve(app: Gatepass, *, listen: str | None = None, admin_listen: str | None = None, ready: Any = None) -> None:
    """Run until SIGTERM or SIGINT (blocking)."""
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    service = GatewayService(app, listen=listen, admin_listen=admin_listen)
    stop = asyncio.Event()

    async def main() -> None:
        await service.start()
        # Garbage collection, tuned for a long-lived process that allocates a lot per request:
        # - What start-up loaded (agents, keys, grants, modules) lives until the process ends or a
        #   change replaces it. Left to the cyclic GC, every full collection walks all of it again
        #   (with many keys, a few percent of the CPU under load); frozen, collections skip it.
        # - A young collection runs when more than threshold0 new objects are alive. Requests in
        #   flight under load hold a few thousand: at the default 700 young collections run all the
        #   time and promote those objects (to be walked again by older collections); at 10,000
        #   they are rare. Memory is still freed by reference counting; only cycles wait longer.
        gc.freeze()
        gc.set_threshold(10_000, 10, 10)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready(service)
        await stop.wait()
        await service.stop()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
