"""The public surface of gatepass.alerts, pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import gatepass.alerts


def test_public_names_are_pinned() -> None:
    assert sorted(gatepass.alerts.__all__) == [
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
        "SIGNATURE_HEADER",
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
    for name in gatepass.alerts.__all__:
        assert getattr(gatepass.alerts, name) is not None


def test_notify_error_is_part_of_the_one_error_tree() -> None:
    assert issubclass(gatepass.alerts.NotifyError, gatepass.GatepassError)
