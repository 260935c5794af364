"""Decoy files for a run: written into the working folder where nothing of that name exists, removed after.

Each file is created with ``O_EXCL`` (an existing file is never overwritten) and mode 0600; missing
parent folders are created (0700) and removed again when they are empty at the end.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gatepass.errors import InvalidInputError

__all__ = ["Planted", "plant_files"]


@dataclass
class Planted:
    """What :func:`plant_files` created, for :meth:`remove`."""

    files: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)

    def remove(self) -> None:
        """Remove the files, then the folders left empty (deepest first)."""
        for path in self.files:
            path.unlink(missing_ok=True)
        for folder in reversed(self.folders):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self.files.clear()
        self.folders.clear()


def _target(root: Path, relative: str) -> Path:
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise InvalidInputError(f"decoy file {relative!r} is not a plain relative path: fix the canary's file name")
    return root.joinpath(*parts)


def plant_files(root: Path, files: Sequence[tuple[str, str]]) -> Planted:
    """Write ``(relative path, content)`` files under ``root`` where none exists yet."""
    planted = Planted()
    try:
        for relative, content in files:
            path = _target(root, relative)
            missing = [p for p in reversed(path.parents) if _under_root(p, root) and not p.exists()]
            for folder in missing:
                folder.mkdir(mode=0o700)
                planted.folders.append(folder)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                continue
            planted.files.append(path)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
    except BaseException:
        planted.remove()
        raise
    return planted


def _under_root(path: Path, root: Path) -> bool:
    return root in path.parents
