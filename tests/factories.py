"""Domain records for unit tests, with plain defaults that a test overrides by keyword."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gatepass.model import Agent, AgentStatus, KeyRecord, PolicyMode

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def make_agent(**changes: Any) -> Agent:
    base = Agent(
        "ag_1",
        "acme-research-dev",
        "me@example.com",
        "me+acme-research-dev@example.com",
        "",
        AgentStatus.ACTIVE,
        PolicyMode.ENFORCE,
        NOW,
        NOW,
    )
    return replace(base, **changes)


def make_key(**changes: Any) -> KeyRecord:
    return replace(KeyRecord("key_1", "ag_1", NOW, NOW + timedelta(hours=1)), **changes)
