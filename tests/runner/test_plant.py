"""Decoy files: planted where nothing exists, private, and gone after the run."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gatepass.errors import InvalidInputError
from gatepass.runner.plant import plant_files


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_planted_private_and_removed_with_the_folders_made_for_them(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    planted = plant_files(
        tmp_path, [(".env", "A=1\n"), (".aws/credentials", "[default]\n"), ("config/deep/x.json", "{}\n")]
    )
    assert (tmp_path / ".env").read_text() == "A=1\n" and _mode(tmp_path / ".env") == 0o600
    assert _mode(tmp_path / ".aws") == 0o700 and _mode(tmp_path / ".aws" / "credentials") == 0o600
    assert (tmp_path / "config" / "deep" / "x.json").read_text() == "{}\n"
    (tmp_path / "config" / "deep" / "agent-made.txt").write_text("the agent's")
    planted.remove()
    assert not (tmp_path / ".env").exists() and not (tmp_path / ".aws").exists()
    assert not (tmp_path / "config" / "deep" / "x.json").exists()
    assert (tmp_path / "config" / "deep" / "agent-made.txt").exists()  # not empty: left alone
    assert (tmp_path / "config").is_dir()  # it was there before


def test_an_existing_file_is_never_overwritten_nor_removed(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OWNER=1\n")
    (tmp_path / "link.env").symlink_to(tmp_path / "elsewhere")
    planted = plant_files(tmp_path, [(".env", "DECOY=1\n"), ("link.env", "DECOY=1\n")])
    assert planted.files == []
    planted.remove()
    assert (tmp_path / ".env").read_text() == "OWNER=1\n"
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("relative", ["/etc/passwd", "../outside", "a/../../b", ".", ""])
def test_paths_outside_the_folder_are_refused_and_nothing_is_left(tmp_path: Path, relative: str) -> None:
    with pytest.raises(InvalidInputError, match="not a plain relative path"):
        plant_files(tmp_path, [("first/.env", "X=1\n"), (relative, "X=1\n")])
    assert list(tmp_path.iterdir()) == []
