"""Alerts and the interface that delivers them.

An :class:`Alert` is a plain value (no secret ever goes in one): what happened to which agent,
one line for a subject, a few details, a time and a unique id that receivers use to drop
duplicates. A :class:`Notifier` delivers it or raises :class:`NotifyError`. Channels:

* :class:`~gatepass.alerts.webhook.WebhookNotifier`: a signed JSON POST;
* :class:`~gatepass.alerts.smtp.SmtpNotifier`: a plain-text email to the owner, Cc the agent;
* :class:`FanoutNotifier`: every channel at once, one error naming those that failed;
* :class:`MemoryNotifier`: the in-memory fake for tests.

:func:`threshold_alert` and :func:`loop_alert` build the two alerts the gateway sends, with
the same wording on every channel.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import blake2b
from types import MappingProxyType
from typing import Final

from gatepass.errors import GatepassError
from gatepass.units import Period, format_usd

from .breaker import Trip
from .thresholds import Action, Firing

__all__ = [
    "Alert",
    "DetailValue",
    "FanoutNotifier",
    "MemoryNotifier",
    "Notifier",
    "NotifyError",
    "loop_alert",
    "threshold_alert",
]

DetailValue = str | int | float | None

_TOKEN: Final = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_PERIOD_PHRASE: Final = {
    Period.DAY: "today",
    Period.WEEK: "this week",
    Period.MONTH: "this month",
    Period.TOTAL: "in total",
}
_OUTCOME: Final = {Action.WARN: "warning", Action.STOP: "stopped", Action.REVOKE: "keys revoked"}


class NotifyError(GatepassError):
    """An alert could not be delivered on one channel or more; the one-line message names them."""


def _new_id() -> str:
    return "alr_" + uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Alert:
    """Something the owner must hear about. Holds no secret; every text field is one line."""

    kind: str  # "threshold", "loop", ...: also the webhook event "alert.<kind>"
    agent: str
    owner: str  # the owner's email address
    agent_email: str
    action: str  # what gatepass did: "warn", "stop", "revoke", "refuse", ...
    summary: str  # one line, used as the email subject
    details: Mapping[str, DetailValue] = field(default_factory=dict)  # keys ending _micros are USD
    at: datetime = field(default_factory=_now)
    id: str = field(default_factory=_new_id)  # unique; receivers drop a delivery id seen before

    def __post_init__(self) -> None:
        if not _TOKEN.fullmatch(self.kind) or not _TOKEN.fullmatch(self.action):
            raise ValueError("alert kind and action must be short lowercase words, e.g. 'threshold' and 'stop'")
        if not _ID.fullmatch(self.id):
            raise ValueError("alert id must be 1-128 letters, digits and _.:- characters")
        for name in ("agent", "owner", "agent_email", "summary"):
            if any(c in getattr(self, name) for c in "\r\n\0"):
                raise ValueError(f"alert {name} must be a single line")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("alert time must be timezone-aware")
        details = dict(self.details)
        for key, value in details.items():
            if not isinstance(key, str) or not isinstance(value, str | int | float | None):
                raise TypeError(f"alert detail {key!r} must be a str, int, float or None")
        object.__setattr__(self, "details", MappingProxyType(details))

    def as_dict(self) -> dict[str, object]:
        """The alert as JSON-ready data (the webhook body adds ``event``)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "agent": self.agent,
            "owner": self.owner,
            "agent_email": self.agent_email,
            "action": self.action,
            "summary": self.summary,
            "details": dict(self.details),
            "at": self.at.astimezone(UTC).isoformat(),
        }


def threshold_alert(
    firing: Firing,
    *,
    agent: str,
    owner: str,
    agent_email: str,
    budget_micros: int | None = None,
    at: datetime | None = None,
) -> Alert:
    """The alert for a threshold firing; its id is the same for the same (agent, threshold, period)."""
    threshold = firing.threshold
    summary = (
        f"{agent} reached {format_usd(threshold.amount_micros)} {_PERIOD_PHRASE[threshold.period]}: "
        f"{_OUTCOME[threshold.action]}"
    )
    start = firing.period_start.astimezone(UTC).isoformat()
    digest = blake2b(f"{agent}\0{threshold.id}\0{start}".encode(), digest_size=16).hexdigest()
    return Alert(
        kind="threshold",
        agent=agent,
        owner=owner,
        agent_email=agent_email,
        action=threshold.action.value,
        summary=summary,
        details={
            "threshold": threshold.id,
            "period": threshold.period.value,
            "period_start": start,
            "amount_micros": threshold.amount_micros,
            "spent_micros": firing.spent_micros,
            "budget_micros": budget_micros,
        },
        at=at or _now(),
        id=f"thr_{digest}",
    )


def loop_alert(trip: Trip, *, agent: str, owner: str, agent_email: str, at: datetime | None = None) -> Alert:
    """The alert for the first refused request of a runaway-loop episode."""
    return Alert(
        kind="loop",
        agent=agent,
        owner=owner,
        agent_email=agent_email,
        action="refuse",
        summary=f"{agent} sent the same request {trip.repeats} times in {trip.seconds:.0f}s: repeats refused",
        details={
            "body_digest": trip.digest,
            "repeats": trip.repeats,
            "seconds": round(trip.seconds, 3),
            "retry_after_seconds": round(trip.retry_after, 3),
        },
        at=at or _now(),
    )


class Notifier(ABC):
    """One way of delivering alerts. ``send`` returns once delivered, or raises NotifyError."""

    @property
    def name(self) -> str:
        """Names the channel in errors, without secrets (e.g. ``webhook https://hooks.example.com``)."""
        return type(self).__name__

    @abstractmethod
    async def send(self, alert: Alert) -> None:
        """Deliver ``alert``; raise :class:`NotifyError` with a one-line reason if it was not delivered."""


class FanoutNotifier(Notifier):
    """Sends to every channel at once; if any fail, raises one NotifyError naming them after the rest delivered."""

    def __init__(self, notifiers: Iterable[Notifier]) -> None:
        self._notifiers = tuple(notifiers)

    @property
    def notifiers(self) -> tuple[Notifier, ...]:
        return self._notifiers

    @property
    def name(self) -> str:
        return "fanout(" + ", ".join(n.name for n in self._notifiers) + ")"

    def __repr__(self) -> str:
        return f"FanoutNotifier({list(self._notifiers)!r})"

    async def send(self, alert: Alert) -> None:
        results = await asyncio.gather(*(n.send(alert) for n in self._notifiers), return_exceptions=True)
        failures: list[str] = []
        first: BaseException | None = None
        for notifier, result in zip(self._notifiers, results, strict=True):
            if result is None:
                continue
            if not isinstance(result, Exception):
                raise result  # cancellation and the like are not delivery failures
            first = first or result
            # A NotifyError's message is written to be shown; anything else may carry data, so name its type only.
            reason = result.message if isinstance(result, NotifyError) else f"{notifier.name}: {type(result).__name__}"
            failures.append(reason)
        if failures:
            raise NotifyError(
                f"alert {alert.id}: {len(failures)} of {len(self._notifiers)} channels failed: " + "; ".join(failures)
            ) from first


class MemoryNotifier(Notifier):
    """The in-memory fake: records every alert in ``alerts``; set ``fail_with`` to make ``send`` fail."""

    def __init__(self, name: str = "memory") -> None:
        self._name = name
        self.alerts: list[Alert] = []
        self.fail_with: NotifyError | None = None

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"MemoryNotifier({self._name!r}, alerts={len(self.alerts)})"

    async def send(self, alert: Alert) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.alerts.append(alert)

    async def wait_for(self, count: int = 1, *, timeout: float = 2.0) -> list[Alert]:
        """Wait until at least ``count`` alerts arrived (for alerts sent from a background task)."""
        deadline = time.monotonic() + timeout
        while len(self.alerts) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self._name}: {len(self.alerts)} alert(s) after {timeout}s, expected {count}")
            await asyncio.sleep(0.005)
        return list(self.alerts)
