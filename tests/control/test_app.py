"""The session rule: audit first, then commit; a failed audit write means the change never happened."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from gatepass.audit import tail_directory
from gatepass.control import agents
from gatepass.control.app import Gatepass, init_home
from gatepass.errors import AuditWriteError


def test_failed_audit_write_rolls_the_change_back(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_home()
    with Gatepass.open(actor="test") as app:

        def disk_full(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        with monkeypatch.context() as patch:
            patch.setattr(os, "write", disk_full)  # the audit log writes with os.write; SQLite does not
            with pytest.raises(AuditWriteError), app.session() as s:
                agents.create_agent(s, "acme-research-dev", owner="me@example.com")
        with app.read() as tx:
            assert tx.get_agent("acme-research-dev") is None


def test_an_error_in_a_session_writes_no_audit_record(home: Path) -> None:
    init_home()
    with Gatepass.open(actor="test") as app:
        with pytest.raises(RuntimeError), app.session() as s:
            agents.create_agent(s, "acme-research-dev", owner="me@example.com")
            raise RuntimeError("abandon")
        with app.read() as tx:
            assert tx.list_agents() == []
    assert [r.action for r in tail_directory(home / "audit", 10)] == ["home.init"]


def test_actor_is_recorded(home: Path) -> None:
    init_home(actor="cli:alice")
    with Gatepass.open(actor="cli:bob") as app, app.session() as s:
        agents.create_agent(s, "acme-research-dev", owner="me@example.com")
    assert [r.actor for r in tail_directory(home / "audit", 10)] == ["cli:alice", "cli:bob"]
