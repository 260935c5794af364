"""Spend thresholds, alert delivery and the runaway-loop breaker.

* :mod:`~gatepass.alerts.thresholds`: which thresholds fire now (pure logic);
* :mod:`~gatepass.alerts.notify`: the :class:`Alert` value, the :class:`Notifier` interface,
  fan-out and the in-memory fake; :mod:`~gatepass.alerts.webhook` and
  :mod:`~gatepass.alerts.smtp`: the two real channels;
* :mod:`~gatepass.alerts.breaker`: refuses an agent that keeps sending the same request.

Example (what the gateway does after settling a request's cost)::

    for firing in due(thresholds, spend_by_period, fired, datetime.now(UTC)):
        ...  # apply firing.threshold.action (suspend / revoke), audit it
        fired.add(firing.key)
        await notifier.send(threshold_alert(firing, agent=name, owner=owner, agent_email=email))

    notifier = FanoutNotifier([WebhookNotifier(url, secret), SmtpNotifier(host, 587, sender, starttls=True)])

    breaker = LoopBreaker(window_seconds=60, max_repeats=20)
    if (trip := breaker.observe(agent_id, body)) is not None:
        ...  # refuse with 429 and retry-after=trip.retry_after; alert once when trip.first
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .breaker import LoopBreaker, Trip
from .notify import (
    Alert,
    DetailValue,
    FanoutNotifier,
    MemoryNotifier,
    Notifier,
    NotifyError,
    loop_alert,
    threshold_alert,
)
from .thresholds import Action, FiredKey, Firing, Threshold, due, parse_threshold, parse_thresholds

if TYPE_CHECKING:
    from .smtp import SmtpNotifier
    from .webhook import SIGNATURE_HEADER, WebhookNotifier, encode_alert, sign, verify_signature

# The two delivery channels import aiohttp and smtplib: loaded on first use, so that every CLI
# command (the store reads thresholds) does not pay for them.
_LAZY = {
    "SmtpNotifier": ".smtp",
    "SIGNATURE_HEADER": ".webhook",
    "WebhookNotifier": ".webhook",
    "encode_alert": ".webhook",
    "sign": ".webhook",
    "verify_signature": ".webhook",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)


__all__ = [
    "SIGNATURE_HEADER",
    "Action",
    "Alert",
    "DetailValue",
    "FanoutNotifier",
    "FiredKey",
    "Firing",
    "LoopBreaker",
    "MemoryNotifier",
    "Notifier",
    "NotifyError",
    "SmtpNotifier",
    "Threshold",
    "Trip",
    "WebhookNotifier",
    "due",
    "encode_alert",
    "loop_alert",
    "parse_threshold",
    "parse_thresholds",
    "sign",
    "threshold_alert",
    "verify_signature",
]
