import hashlib
import json
import sqlite3
import stat
from pathlib import Path

import pytest

from gatepass.vault.crypto import MasterKey
from tests.conftest import Gp


def _snapshot(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


def test_init_creates_a_private_home(gp: Gp, home: Path) -> None:
    result = gp("init")
    assert result.code == 0, result
    assert "created gatepass home" in result.err
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for path in home.rglob("*"):
        want = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == want, path
    assert {"config.toml", "gatepass.db", "master.key", "audit.pub", "audit"} <= {p.name for p in home.iterdir()}


def test_init_again_changes_nothing_and_says_so(gp: Gp, home: Path) -> None:
    assert gp("init").code == 0
    before = _snapshot(home)
    again = gp("init")
    assert again.code == 0
    assert "already initialised; nothing changed" in again.err
    assert _snapshot(home) == before


def test_init_with_master_key_in_environment_writes_no_key_file(gp: Gp, home: Path) -> None:
    key = MasterKey.generate().to_text()
    result = gp("init", env={"GATEPASS_MASTER_KEY": key})
    assert result.code == 0, result
    assert not (home / "master.key").exists()
    assert "GATEPASS_MASTER_KEY" in result.err
    # Without the key, commands that need the vault say what to set.
    missing = gp("agent", "create", "acme-research-dev", "--owner", "me@example.com")
    assert missing.code == 1
    assert "set GATEPASS_MASTER_KEY" in missing.err
    ok = gp("agent", "create", "acme-research-dev", "--owner", "me@example.com", env={"GATEPASS_MASTER_KEY": key})
    assert ok.code == 0, ok


def test_init_refuses_a_folder_that_is_not_a_home(gp: Gp, home: Path) -> None:
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    result = gp("init")
    assert result.code == 1
    assert "is not a gatepass home" in result.err
    assert [p.name for p in home.iterdir()] == ["notes.txt"]


def test_init_failure_leaves_nothing_behind(gp: Gp, home: Path) -> None:
    result = gp("init", env={"GATEPASS_MASTER_KEY": "not-a-key"})
    assert result.code == 1
    assert "malformed" in result.err
    assert not home.exists()


def test_commands_refuse_a_home_open_to_others(gp: Gp, home: Path) -> None:
    assert gp("init").code == 0
    home.chmod(0o755)
    result = gp("agent", "list")
    assert result.code == 1
    assert f"chmod -R go-rwx {home}" in result.err
    assert result.err.count("\n") == 1
    home.chmod(0o700)
    (home / "config.toml").chmod(0o644)
    result = gp("agent", "list", "--json")
    assert result.code == 1 and "config.toml" in result.err and "0644" in result.err
    (home / "config.toml").chmod(0o600)
    assert json.loads(gp("agent", "list", "--json").out) == []


def test_commands_on_a_missing_home_say_run_init(gp: Gp) -> None:
    result = gp("agent", "list")
    assert result.code == 1
    assert "run gatepass init" in result.err


def test_corrupted_store_is_one_clear_line(gp: Gp, home: Path) -> None:
    assert gp("init").code == 0
    (home / "gatepass.db").write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        (home / f"gatepass.db{suffix}").unlink(missing_ok=True)
    result = gp("agent", "list")
    assert result.code == 1
    assert "corrupted" in result.err and "restore it from a backup" in result.err
    assert result.err.count("\n") == 1


def test_locked_store_is_one_clear_line_and_changes_nothing(
    gp: Gp, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gp("init").code == 0
    monkeypatch.setattr("gatepass.store.sql._BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(home / "gatepass.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = gp("agent", "create", "acme-research-dev", "--owner", "me@example.com")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.code == 1 and "locked by another process" in result.err and result.err.count("\n") == 1
    assert json.loads(gp("agent", "list", "--json").out) == []
    assert gp("audit", "verify").code == 0
