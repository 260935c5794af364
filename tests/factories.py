"""Domain records for unit tests, with plain defaults that a test overrides by keyword."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gatepass.dataplane.http.client import Origin
from gatepass.dataplane.state import Credential, UpstreamEntry
from gatepass.model import Agent, AgentStatus, AuthStyle, KeyRecord, LiveKey, PolicyMode, Upstream, UpstreamType
from gatepass.providers import get_provider

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


def make_live_key(**changes: Any) -> LiveKey:
    """A key as the gateway holds it (what admission reads)."""
    return LiveKey.of(make_key(**changes))


def make_upstream_entry(name: str = "anthropic", base_url: str = "http://127.0.0.1:9") -> UpstreamEntry:
    """An Anthropic upstream as the gateway holds it, with a (fake) credential."""
    upstream = Upstream(name, UpstreamType.ANTHROPIC, base_url, AuthStyle("header", "x-api-key"), "main", NOW)
    return UpstreamEntry(
        upstream, get_provider("anthropic"), Origin.parse(base_url), b"", Credential(b"x-api-key", b"real"), None
    )
