"""``GATEPASS_HOME``: where a gatepass installation keeps its files, and the rules they follow.

Layout::

    ~/.gatepass/            0700
      config.toml           how this installation runs
      gatepass.db           the store (SQLite; -wal and -shm beside it)
      master.key            the master key, unless GATEPASS_MASTER_KEY is set
      audit.pub             the audit log's public key, for `gatepass audit verify`
      audit/                the audit log and its signed checkpoints

Every file must be 0600 and every folder 0700 (nothing for group or others), owned by the user
running gatepass; any command refuses a home that is looser and prints the chmod that fixes it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gatepass.errors import HomeError, InsecurePermissionsError, MasterKeyError
from gatepass.vault.crypto import MasterKey

__all__ = ["ENV_HOME", "ENV_MASTER_KEY", "Home"]

ENV_HOME: Final = "GATEPASS_HOME"
ENV_MASTER_KEY: Final = "GATEPASS_MASTER_KEY"


@dataclass(frozen=True, slots=True)
class Home:
    path: Path

    @classmethod
    def locate(cls, env: Mapping[str, str] = os.environ) -> Home:
        raw = env.get(ENV_HOME) or "~/.gatepass"
        return cls(Path(raw).expanduser().absolute())

    @property
    def config_file(self) -> Path:
        return self.path / "config.toml"

    @property
    def db_file(self) -> Path:
        return self.path / "gatepass.db"

    @property
    def master_key_file(self) -> Path:
        return self.path / "master.key"

    @property
    def public_key_file(self) -> Path:
        return self.path / "audit.pub"

    @property
    def audit_dir(self) -> Path:
        return self.path / "audit"

    def is_initialised(self) -> bool:
        return self.config_file.is_file()

    def require(self) -> None:
        """Fail unless this is an initialised home with safe permissions."""
        if not self.is_initialised():
            raise HomeError(f"no gatepass home at {self.path}: run gatepass init (or set {ENV_HOME})")
        self.check_permissions()

    def check_permissions(self) -> None:
        """Refuse a home that other users can read or that someone else owns."""
        uid = os.getuid()
        fix = f"run: chmod -R go-rwx {self.path}"
        for path in self._walk():
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                continue
            if info.st_uid != uid:
                raise InsecurePermissionsError(
                    f"{path} belongs to uid {info.st_uid}, not to you (uid {uid}): run: chown -R {uid} {self.path}"
                )
            if info.st_mode & 0o077:
                kind = "folder" if stat.S_ISDIR(info.st_mode) else "file"
                want = "0700" if kind == "folder" else "0600"
                raise InsecurePermissionsError(
                    f"{kind} {path} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}, "
                    f"must be {want}): {fix}"
                )

    def _walk(self) -> list[Path]:
        found = [self.path]
        for root, dirs, files in os.walk(self.path, followlinks=False):
            found.extend(Path(root) / name for name in (*dirs, *files))
        return found

    # -- creating files ---------------------------------------------------------------------------
    def make_dirs(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)

    @staticmethod
    def write_private(path: Path, data: bytes) -> None:
        """Create ``path`` 0600 with ``data``, durably; never overwrites an existing file."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- the master key ---------------------------------------------------------------------------
    def master_key(self, env: Mapping[str, str] = os.environ) -> tuple[MasterKey, str]:
        """The master key and where it came from: GATEPASS_MASTER_KEY first, then master.key."""
        text = env.get(ENV_MASTER_KEY)
        if text:
            return MasterKey.from_text(text, source=ENV_MASTER_KEY), ENV_MASTER_KEY
        try:
            file_text = self.master_key_file.read_text(encoding="ascii")
        except FileNotFoundError:
            raise MasterKeyError(
                f"no master key: this home keeps none in {self.master_key_file}, so set {ENV_MASTER_KEY} "
                "to the key it was created with"
            ) from None
        except (OSError, UnicodeDecodeError):
            raise MasterKeyError(f"cannot read {self.master_key_file}: check the file") from None
        return MasterKey.from_text(file_text, source=str(self.master_key_file)), str(self.master_key_file)
