"""``gatepass canary ...``: decoy credentials planted for an agent; seen in its traffic, they trip an alarm."""

from __future__ import annotations

import click

from gatepass.cli.common import json_option, open_app
from gatepass.cli.output import echo_json, echo_table, fmt_time, iso, note
from gatepass.control import canaries as canary_ops

__all__ = ["register"]


@click.group("canary")
def canary_group() -> None:
    """Decoy credentials: a canary seen in an agent's outbound traffic is blocked, alerts, and revokes the agent."""


@canary_group.command("add")
@click.argument("agent")
@click.option(
    "--kind",
    default="aws",
    show_default=True,
    metavar="KIND",
    help=f"The credential to imitate: {', '.join(canary_ops.KINDS)}.",
)
@click.option(
    "--file",
    "file",
    metavar="PATH",
    help="Plant it in this file of the agent's working directory (relative), instead of its environment.",
)
@click.option(
    "--env", "env", multiple=True, metavar="NAME", help="Variable name(s) to use instead of the kind's defaults."
)
@click.option("--no-revoke", is_flag=True, help="Block and alert when tripped, but leave the agent's keys alone.")
@click.pass_context
def canary_add(
    ctx: click.Context, agent: str, kind: str, file: str | None, env: tuple[str, ...], no_revoke: bool
) -> None:
    """Plant fresh random decoys for AGENT (set by gatepass run); the values are never shown.

    \b
    gatepass canary add acme-research-dev
    gatepass canary add acme-research-dev --kind stripe --file .env
    gatepass canary add acme-research-dev --kind aws --file .aws/credentials
    """
    with open_app(ctx).session() as session:
        info = canary_ops.add_canary(session, agent, kind, file=file, env=env, revoke=not no_revoke)
    click.echo(info.id)
    place = f"in the file {info.file} of its working directory" if info.file else "in its environment"
    note(f"planted {info.kind} canary {info.id} for {agent} {place} ({', '.join(info.env)}); gatepass run plants it")


@canary_group.command("list")
@click.argument("agent", required=False)
@json_option
@click.pass_context
def canary_list(ctx: click.Context, agent: str | None, as_json: bool) -> None:
    """The canaries of AGENT, or of every agent: names only, never values."""
    app = open_app(ctx)
    with app.read() as tx:
        items = canary_ops.list_canaries(tx, app.vault, agent)
    if as_json:
        echo_json(
            [
                {
                    "id": c.id,
                    "agent": c.agent,
                    "kind": c.kind,
                    "env": list(c.env),
                    "file": c.file,
                    "revoke": c.revoke,
                    "created_at": iso(c.created),
                }
                for c in items
            ]
        )
        return
    echo_table(
        ("id", "agent", "kind", "variables", "file", "revoke", "created"),
        [
            (c.id, c.agent, c.kind, ",".join(c.env), c.file or "-", "yes" if c.revoke else "no", fmt_time(c.created))
            for c in items
        ],
        empty="no canaries; plant one with gatepass canary add AGENT --kind aws",
    )


@canary_group.command("rm")
@click.argument("agent")
@click.argument("canary_id")
@click.pass_context
def canary_rm(ctx: click.Context, agent: str, canary_id: str) -> None:
    """Remove canary CANARY_ID from AGENT (its decoys are no longer planted or watched for)."""
    with open_app(ctx).session() as session:
        info = canary_ops.remove_canary(session, agent, canary_id)
    note(f"removed {info.kind} canary {info.id} from {agent}")


def register(cli: click.Group) -> None:
    cli.add_command(canary_group)
