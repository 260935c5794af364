"""Shared fixtures: a fresh home per test, the CLI run in-process, generated fake secrets, services."""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import gatepass.dataplane.gateway
from gatepass.cli.main import main

REQUIRE_SERVICES = os.environ.get("GATEPASS_REQUIRE_SERVICES") == "1"


#: The suite runs on the pure-Python build (make test) and on the compiled one (make test-compiled).
COMPILED = not gatepass.dataplane.gateway.__file__.endswith(".py")


def fake_secret(prefix: str = "FAKE-", length: int = 40) -> str:
    """A credential-shaped value made at run time (never a literal in the repo)."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out!r}, err={self.err!r})"


Gp = Callable[..., CliResult]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "gphome"
    monkeypatch.setenv("GATEPASS_HOME", str(path))
    for name in ("GATEPASS_MASTER_KEY", "GATEPASS_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def gp(home: Path) -> Gp:
    """Run the gatepass CLI in-process: ``gp("agent", "list", input=...)`` -> CliResult."""

    def run(*args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> CliResult:
        runner = CliRunner()
        with runner.isolation(input=input, env=env) as (out, err, _):
            code = main(list(args))
        return CliResult(code, out.getvalue().decode(), err.getvalue().decode())

    return run


@pytest.fixture
def ready(gp: Gp) -> Gp:
    """An initialised home with an anthropic upstream (fake secret) and one agent."""
    assert gp("init").code == 0
    assert gp("secret", "add", "anthropic-main", "--upstream", "anthropic", input=fake_secret()).code == 0
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com", "--budget", "50/month").code == 0
    return gp


# -- real services ------------------------------------------------------------------------------


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (GATEPASS_REQUIRE_SERVICES=1: service-backed tests may not skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    name = "gatepass_test_" + secrets.token_hex(4)
    try:
        admin = psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as exc:
        _skip_or_fail(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc.__class__.__name__})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    pymysql = pytest.importorskip("pymysql")
    name = "gatepass_test_" + secrets.token_hex(4)
    try:
        admin = pymysql.connect(
            host="127.0.0.1", port=3306, user="root", password="", connect_timeout=3, autocommit=True
        )
    except pymysql.err.OperationalError as exc:
        _skip_or_fail(f"MariaDB is not reachable on 127.0.0.1:3306 ({exc.__class__.__name__})")
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
