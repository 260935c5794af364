"""The domain records: the gateway's lean copy of a key agrees with the store's record."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime, timedelta

import pytest

from gatepass.model import KeyRecord, KeyState, LiveKey, RateLimits
from gatepass.units import parse_budget
from tests.factories import NOW, make_key

FULL = make_key(
    max_uses=5,
    uses_left=2,
    cidrs=("10.0.0.0/8",),
    upstreams=("anthropic",),
    budgets=(parse_budget("5/day"),),
    limits=RateLimits(rpm=10),
    last_used_at=NOW,
    last_used_ip="10.0.0.1",
)


def test_live_key_keeps_every_field_admission_reads() -> None:
    live = LiveKey.of(FULL)
    for f in fields(LiveKey):
        assert getattr(live, f.name) == getattr(FULL, f.name), f.name
    # Only what listings show is left out.
    left_out = {f.name for f in fields(KeyRecord)} - {f.name for f in fields(LiveKey)}
    assert left_out == {"created_at", "max_uses", "last_used_at", "last_used_ip", "revoked_reason"}


@pytest.mark.parametrize(
    ("changes", "at", "state"),
    [
        ({}, NOW, KeyState.ACTIVE),
        ({}, NOW + timedelta(hours=2), KeyState.EXPIRED),
        ({"revoked_at": NOW, "revoked_reason": "leaked"}, NOW, KeyState.REVOKED),
        ({"uses_left": 0}, NOW, KeyState.USED_UP),
        ({"uses_left": 0, "revoked_at": NOW}, NOW, KeyState.REVOKED),
    ],
)
def test_live_key_state_matches_the_record(changes: dict[str, object], at: datetime, state: KeyState) -> None:
    record = replace(FULL, **changes)
    assert record.state(at) is state
    assert LiveKey.of(record).state(at) is state
