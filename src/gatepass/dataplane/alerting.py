"""Spend thresholds, the runaway breaker and canaries, acted on by the running gateway.

After each settled request the agent's thresholds are checked against its settled spend in each
period (:func:`gatepass.alerts.due`). A threshold reached fires once per period: the firing is
recorded in the store first (so two processes, or a restart, cannot fire it twice), then the action
runs (stop suspends the agent; revoke also revokes all its keys) through the same control
functions as the CLI, the gateway applies the change at once, and the owner is notified by webhook
and email. Each step is audited. None of this holds up the request that crossed the threshold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from gatepass.alerts import (
    Action,
    Alert,
    FiredKey,
    Firing,
    Notifier,
    NotifyError,
    Threshold,
    Trip,
    due,
    loop_alert,
    threshold_alert,
)
from gatepass.audit import AsyncAuditWriter, AuditEvent
from gatepass.control import agents as agent_ops
from gatepass.control.app import Gatepass
from gatepass.control.canaries import canary_tripped, tripped_message
from gatepass.dataplane.exchange import Exchange
from gatepass.dataplane.state import RuntimeState
from gatepass.metering.counters import Counters
from gatepass.model import Agent, Canary
from gatepass.store import Transaction
from gatepass.units import format_usd

__all__ = ["AlertEngine"]

log = logging.getLogger("gatepass.alerts")
_ACTOR = "gateway:alerts"


class AlertEngine:
    def __init__(
        self,
        app: Gatepass,
        state: RuntimeState,
        counters: Counters,
        audit: AsyncAuditWriter,
        notifier: Notifier | None,
        refresh: Callable[[], Awaitable[int]],
    ) -> None:
        self._app = app
        self._state = state
        self._counters = counters
        self._audit = audit
        self._notifier = notifier
        self._refresh = refresh
        self.thresholds: dict[str, tuple[Threshold, ...]] = {}
        self.fired: set[FiredKey] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def load(self, tx: Transaction, since: datetime) -> None:
        self.thresholds = tx.list_alerts()
        self.fired = tx.fired_since(since)

    def reload(self, tx: Transaction, agent_id: str) -> None:
        found = tx.list_alerts(agent_id).get(agent_id, ())
        if found:
            self.thresholds[agent_id] = found
        else:
            self.thresholds.pop(agent_id, None)

    # -- called on the request path (cheap, synchronous) ----------------------------------------
    def on_settled(self, ex: Exchange) -> None:
        agent = ex.agent
        if agent is None:
            return
        thresholds = self.thresholds.get(agent.id)
        if not thresholds:
            return
        spend = self._counters.spent("agent", agent.id, ex.now)
        for firing in due(thresholds, spend, self.fired, ex.now):
            self.fired.add(firing.key)
            self._spawn(self._fire(agent, firing))

    def on_loop(self, agent: Agent, trip: Trip) -> None:
        if trip.first:
            self._spawn(self._loop(agent, trip))

    def on_canary(self, agent: Agent, canary: Canary, where: str) -> None:
        """A canary was seen in a request (which is refused): audit, revoke if it says so, notify."""
        self._spawn(self._canary(agent, canary, where))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for firings in progress (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the work, off the request path ----------------------------------------------------------
    async def _fire(self, agent: Agent, firing: Firing) -> None:
        threshold = firing.threshold
        try:
            first = await asyncio.to_thread(self._record, firing)
            if not first:
                return  # fired already (another process, or before a restart)
            await asyncio.to_thread(self._act, agent, threshold.action, firing)
            if threshold.action is not Action.WARN:
                await self._refresh()
            budget = next((b.amount_micros for b in agent.budgets if b.period is threshold.period), None)
            alert = threshold_alert(
                firing, agent=agent.name, owner=agent.owner, agent_email=agent.email, budget_micros=budget
            )
            await self._notify(alert)
        except Exception:
            log.exception("threshold %s of %s could not be acted on", threshold, agent.name)

    def _record(self, firing: Firing) -> bool:
        with self._app.store.transaction(write=True) as tx:
            return tx.record_firing(firing.threshold.id, firing.period_start, self._app.now())

    def _act(self, agent: Agent, action: Action, firing: Firing) -> None:
        reason = (
            f"spend threshold {firing.threshold} reached: {format_usd(firing.spent_micros)} "
            f"spent this {firing.threshold.period.value}"
        )
        with self._app.session(actor=_ACTOR) as session:
            session.record(
                "alert.fire",
                agent.name,
                {
                    "threshold": str(firing.threshold),
                    "action": action.value,
                    "spent_micros": firing.spent_micros,
                    "period_start": firing.period_start.isoformat(),
                },
            )
            if action is Action.STOP:
                agent_ops.suspend_agent(session, agent.name, reason=reason)
            elif action is Action.REVOKE:
                agent_ops.kill_agent(session, agent.name, reason=reason)

    async def _canary(self, agent: Agent, canary: Canary, where: str) -> None:
        try:
            await asyncio.to_thread(self._trip, canary, where)
            if canary.revoke:
                await self._refresh()
            subject, body = tripped_message(agent.name, canary, where)
            alert = Alert(
                kind="canary",
                agent=agent.name,
                owner=agent.owner,
                agent_email=agent.email,
                action="revoke" if canary.revoke else "refuse",
                summary=subject,
                details={"canary": canary.id, "canary_kind": canary.kind, "where": where, "message": body},
            )
            await self._notify(alert)
        except Exception:
            log.exception("canary %s of %s could not be acted on", canary.id, agent.name)

    def _trip(self, canary: Canary, where: str) -> None:
        with self._app.session(actor=_ACTOR) as session:
            canary_tripped(session, canary, where=where)

    async def _loop(self, agent: Agent, trip: Trip) -> None:
        await self._audit.write(
            AuditEvent(
                actor=_ACTOR,
                action="alert.loop",
                target=agent.name,
                decision="deny",
                reason="loop_detected",
                meta={"repeats": trip.repeats, "seconds": round(trip.seconds, 3), "body_digest": trip.digest},
            )
        )
        await self._notify(loop_alert(trip, agent=agent.name, owner=agent.owner, agent_email=agent.email))

    async def _notify(self, alert: Alert) -> None:
        if self._notifier is None:
            return
        try:
            await self._notifier.send(alert)
            outcome, reason, meta = "ok", "delivered", {"alert": alert.id, "kind": alert.kind}
        except NotifyError as exc:
            outcome, reason, meta = (
                "error",
                "delivery_failed",
                {"alert": alert.id, "kind": alert.kind, "error": exc.message},
            )
        await self._audit.write(
            AuditEvent(
                actor=_ACTOR, action="alert.notify", target=alert.agent, decision=outcome, reason=reason, meta=meta
            )
        )
