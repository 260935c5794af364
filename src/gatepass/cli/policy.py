"""``gatepass plan`` and ``gatepass apply``: policy as code from gatepass.toml."""

from __future__ import annotations

from pathlib import Path

import click

from gatepass.cli.common import json_option, open_app
from gatepass.cli.output import echo_json, note
from gatepass.control.app import Gatepass
from gatepass.policy.document import load_policy
from gatepass.policy.state import Change, PolicyState, apply_plan, current_state, make_plan

__all__ = ["register"]

_FILE = click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("gatepass.toml"),
    show_default=True,
    help="The policy file.",
)


def _summary(plan: list[Change]) -> str:
    counts = {op: sum(1 for c in plan if c.op == op) for op in "+~-"}
    return f"{counts['+']} to add, {counts['~']} to change, {counts['-']} to remove"


def _missing_secrets(app: Gatepass, desired: PolicyState) -> list[str]:
    with app.read() as tx:
        stored = {s.name for s in tx.list_secrets()}
    return [
        f"secret {u.secret} (upstream {u.name}) is not in the vault: gatepass secret add {u.secret} --upstream {u.name}"
        for u in desired.upstreams.values()
        if u.secret and u.secret not in stored
    ]


@click.command("plan")
@_FILE
@click.option("--exit-code", is_flag=True, help="Exit 1 when the store differs from the file (for CI drift checks).")
@json_option
@click.pass_context
def plan_command(ctx: click.Context, path: Path, exit_code: bool, as_json: bool) -> None:
    """Show what apply would change to make the store match the policy file."""
    app = open_app(ctx)
    desired = load_policy(path, app.config.agents.environments)
    with app.read() as tx:
        plan = make_plan(current_state(tx), desired)
    if as_json:
        echo_json({"changes": [c.as_json() for c in plan], "notes": _missing_secrets(app, desired)})
    else:
        for change in plan:
            click.echo(str(change))
        note(f"plan: {_summary(plan)}" if plan else f"no changes: the store matches {path}")
        for line in _missing_secrets(app, desired):
            note(f"note: {line}")
    ctx.exit(1 if exit_code and plan else 0)


@click.command("apply")
@_FILE
@click.pass_context
def apply_command(ctx: click.Context, path: Path) -> None:
    """Make the store match the policy file, in one transaction (all of it or nothing)."""
    app = open_app(ctx)
    desired = load_policy(path, app.config.agents.environments)
    with app.session() as session:
        plan = make_plan(current_state(session.tx), desired)
        apply_plan(session, plan)
        if plan:
            session.record("policy.apply", str(path.resolve()), {"changes": [str(c) for c in plan]})
    for change in plan:
        click.echo(str(change))
    note(f"applied: {_summary(plan)}" if plan else f"no changes: the store already matches {path}")
    for line in _missing_secrets(app, desired):
        note(f"note: {line}")


def register(cli: click.Group) -> None:
    cli.add_command(plan_command)
    cli.add_command(apply_command)
