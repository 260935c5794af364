"""The sandbox's plan: bwrap found and proven, what is hidden, and a command line without secrets."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from gatepass.errors import GatepassError
from gatepass.runner import sandbox
from gatepass.runner.sandbox import Sandbox, env_files, find_bwrap, hidden_paths
from tests.conftest import fake_secret


def _fake_bwrap(folder: Path, script: str) -> str:
    folder.mkdir()
    path = folder / "bwrap"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(folder)


def test_missing_bwrap_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(GatepassError) as info:
        find_bwrap(str(tmp_path))
    message = info.value.message
    assert "not on PATH" in message and "apt-get install bubblewrap" in message and "dnf install bubblewrap" in message


def test_a_bwrap_that_cannot_make_namespaces_is_refused_with_its_reason(tmp_path: Path) -> None:
    folder = _fake_bwrap(tmp_path / "bin", "echo 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    with pytest.raises(GatepassError, match="cannot create namespaces here") as info:
        find_bwrap(folder)
    assert "No permissions to create new namespace" in info.value.message
    assert "\n" not in info.value.message


def test_a_working_bwrap_is_returned(tmp_path: Path) -> None:
    folder = _fake_bwrap(tmp_path / "bin", "exit 0\n")
    assert find_bwrap(folder) == os.path.join(folder, "bwrap")


def test_env_files_are_found_in_the_tree_but_not_in_tool_folders(tmp_path: Path) -> None:
    for rel in (".env", ".envrc", "a/.env.local", "a/b/c/.env.production", "node_modules/x/.env", ".git/.env"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("X=1\n")
    (tmp_path / "environment.txt").write_text("")
    (tmp_path / "a" / "env").write_text("")
    (tmp_path / "a" / ".env.d").mkdir()  # a folder: not a file to hide
    found = {p.relative_to(tmp_path).as_posix() for p in env_files(tmp_path)}
    assert found == {".env", ".envrc", "a/.env.local", "a/b/c/.env.production"}
    assert {p.relative_to(tmp_path).as_posix() for p in env_files(tmp_path, max_depth=2)} == {
        ".env",
        ".envrc",
        "a/.env.local",
    }


def test_a_tree_too_large_to_check_is_refused(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"f{i}").write_text("")
    with pytest.raises(GatepassError, match=r"more than 20 files to check for \.env files"):
        env_files(tmp_path, max_entries=20)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A working folder holding a home and a gatepass home (so that nothing of it is under a replaced /tmp)."""
    home = tmp_path / "home"
    for rel in (".ssh/id_ed25519", ".aws/credentials", ".docker/config.json", ".netrc", "notes/secret.txt"):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(fake_secret())
    (home / ".docker" / "other.json").write_text("{}")
    (tmp_path / "gphome").mkdir()
    (tmp_path / "gphome" / ".env").write_text("inside the gatepass home")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / ".env").write_text(fake_secret())
    return tmp_path


def test_credential_files_the_gatepass_home_and_env_files_are_hidden(tree: Path) -> None:
    home = tree / "home"
    hidden = hidden_paths(
        cwd=tree,
        home=home,
        private=[tree / "gphome", tree / "elsewhere.db"],
        extra=["~/notes/secret.txt", str(tree / "absolute-missing")],
    )
    assert hidden == (
        tree / "gphome",  # its .env is inside: not listed twice
        home / ".aws",
        home / ".docker" / "config.json",
        home / ".netrc",
        home / ".ssh",
        home / "notes" / "secret.txt",
        tree / "project" / ".env",
    )


def test_what_the_sandbox_replaces_anyway_is_not_listed(tree: Path) -> None:
    # The working folder is tree/project: the home under /tmp is not visible in the sandbox at all.
    hidden = hidden_paths(cwd=tree / "project", home=tree / "home", private=[tree / "gphome"])
    assert hidden == (tree / "project" / ".env",)


def test_a_working_folder_inside_a_hidden_one_is_refused(tree: Path) -> None:
    with pytest.raises(GatepassError, match=r"inside .*which the sandbox hides"):
        hidden_paths(cwd=tree / "home" / ".ssh", home=tree / "home", private=[])
    with pytest.raises(GatepassError, match="would make / writable"):
        hidden_paths(cwd=Path("/"), home=None, private=[])


def test_the_options_share_the_working_folder_and_hide_after_it(tree: Path) -> None:
    folder, file = tree / "home" / ".ssh", tree / "project" / ".env"
    sandbox = Sandbox("bwrap", tree, (folder, file))
    private = tree / "private"
    value = fake_secret()
    options = sandbox.options(private, {"PATH": "/usr/bin", "GATEPASS_KEY": value})
    text = " ".join(options)
    for flags in (
        "--unshare-all --die-with-parent --new-session --as-pid-1",
        "--ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --tmpfs /run",
        f"--ro-bind {private}/sock /run/gatepass --bind {tree} {tree}",
        f"--tmpfs {folder} --ro-bind {private}/empty {file}",
        f"--chdir {tree} --clearenv --setenv PATH /usr/bin --setenv GATEPASS_KEY {value}",
    ):
        assert flags in text, flags
    assert ("--cap-drop ALL" in text) == (os.geteuid() == 0)
    assert "--share-net" not in options and "--dev-bind" not in options
    command = sandbox.command(7, 8, ["agent", "--flag"])
    assert command[:5] == ["bwrap", "--args", "7", "--info-fd", "8"]
    assert command[-3:] == ["--", "agent", "--flag"]
    assert "gatepass.runner.inside" in command and "127.0.0.1:8790" in command
    assert value not in " ".join(command)  # every local user can read a command line


def test_an_interpreter_under_tmp_is_shown_again_in_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    venv = Path("/tmp/gatepass-checkout/.venv").resolve()
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "base_prefix", "/usr")
    paths = sandbox.runtime_paths()
    assert venv in paths
    assert all(str(p).startswith(("/tmp", "/run")) for p in paths)  # what / shows already is not bound again
