import os
from pathlib import Path

import pytest

from gatepass.errors import HomeError, InsecurePermissionsError, MasterKeyError
from gatepass.home import Home
from gatepass.vault.crypto import MasterKey


def test_locate(tmp_path: Path) -> None:
    assert Home.locate({"GATEPASS_HOME": str(tmp_path)}).path == tmp_path
    assert Home.locate({}).path == Path("~/.gatepass").expanduser()


def test_require_and_permissions(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    with pytest.raises(HomeError, match="run gatepass init"):
        home.require()
    home.make_dirs()
    home.write_private(home.config_file, b"")
    home.require()
    sub = home.path / "audit"
    sub.mkdir(mode=0o700)
    (sub / "f").write_bytes(b"")
    (sub / "f").chmod(0o640)
    with pytest.raises(InsecurePermissionsError, match="must be 0600") as info:
        home.require()
    assert f"chmod -R go-rwx {home.path}" in info.value.message
    (sub / "f").chmod(0o600)
    sub.chmod(0o750)
    with pytest.raises(InsecurePermissionsError, match="folder"):
        home.check_permissions()


def test_write_private_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "x"
    Home.write_private(path, b"one")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        Home.write_private(path, b"two")
    assert path.read_bytes() == b"one"


def test_master_key_sources(tmp_path: Path) -> None:
    home = Home(tmp_path)
    with pytest.raises(MasterKeyError, match="set GATEPASS_MASTER_KEY"):
        home.master_key({})
    key = MasterKey.generate()
    home.write_private(home.master_key_file, key.to_text().encode())
    assert home.master_key({}) == (key, str(home.master_key_file))
    other = MasterKey.generate()
    assert home.master_key({"GATEPASS_MASTER_KEY": other.to_text()})[0] == other


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a file owned by someone else")
def test_files_of_another_user_are_refused(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    home.make_dirs()
    home.write_private(home.config_file, b"")
    os.chown(home.config_file, 12345, -1)
    with pytest.raises(InsecurePermissionsError, match="chown"):
        home.require()
