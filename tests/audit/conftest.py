"""Fixtures of the audit tests: a signing key, an injectable clock, and a log factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatepass.audit import AuditLog

from .helpers import FakeClock


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "audit"


@pytest.fixture
def open_log(log_dir: Path, key: Ed25519PrivateKey, clock: FakeClock) -> Iterator[Callable[..., AuditLog]]:
    """Open AuditLogs on ``log_dir`` (large checkpoint cadence unless given); closes them after."""
    opened: list[AuditLog] = []

    def make(**kwargs: object) -> AuditLog:
        options: dict[str, object] = {"checkpoint_every": 10**9, "checkpoint_seconds": 10**9, "clock": clock}
        options.update(kwargs)
        log = AuditLog(log_dir, key, **options)  # type: ignore[arg-type]
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()
