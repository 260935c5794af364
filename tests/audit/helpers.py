"""Helpers shared by the audit tests (plain functions, importable from the test modules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatepass.audit import AuditEvent, AuditLog


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def event(n: int = 0, **meta: object) -> AuditEvent:
    return AuditEvent(
        actor="admin",
        action="agent.create",
        target=f"acme-bot-{n}-dev",
        decision="ok",
        reason="admin",
        meta={"n": n, **meta},
    )


def make_dir(tmp_path: Path, key: Ed25519PrivateKey, n: int = 12) -> Path:
    """A log folder of ``n`` records appended one by one, checkpointed every 5 and at close."""
    directory = tmp_path / "audit"
    with AuditLog(directory, key, checkpoint_every=5) as log:
        for i in range(n):
            log.append([event(i)])
    return directory
