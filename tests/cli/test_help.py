"""Every command documents itself, and every listing speaks JSON."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from gatepass.cli.main import cli
from tests.conftest import Gp

LISTINGS = {
    "secret list",
    "upstream list",
    "agent list",
    "agent show",
    "grants",
    "key list",
    "key defaults",
    "audit tail",
    "audit verify",
    "plan",
    "check",
}


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path + " ")


ALL = list(_commands(cli))


def test_the_contract_commands_exist() -> None:
    names = {name for name, _ in ALL}
    assert {
        "init",
        "secret add",
        "secret list",
        "secret rotate",
        "secret rm",
        "upstream add",
        "upstream list",
        "agent create",
        "agent list",
        "agent show",
        "agent suspend",
        "agent resume",
        "agent delete",
        "allow",
        "grants",
        "disallow",
        "key issue",
        "key list",
        "key revoke",
        "revoke",
        "plan",
        "apply",
        "audit tail",
        "audit verify",
        "audit export",
    } <= names


@pytest.mark.parametrize(("name", "command"), ALL, ids=[n for n, _ in ALL])
def test_help_is_complete(gp: Gp, name: str, command: click.Command) -> None:
    result = gp(*name.split(), "--help")
    assert result.code == 0
    assert command.help and len(command.help) > 20, f"{name} has no real help text"
    assert f"gatepass {name}" in result.out
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help"
    if name in LISTINGS:
        assert "--json" in result.out


def test_root_help_and_version(gp: Gp) -> None:
    result = gp("--help")
    assert result.code == 0 and "gatepass init" in result.out and "GATEPASS_MASTER_KEY" in result.out
    assert gp("--version").out.startswith("gatepass, version ")


def test_usage_errors_are_one_line_with_exit_2(gp: Gp) -> None:
    for args in (("nosuch",), ("agent", "create"), ("key", "issue", "a", "--uses", "many")):
        result = gp(*args)
        assert result.code == 2 and result.err.startswith("gatepass: error: ") and result.err.count("\n") == 1
