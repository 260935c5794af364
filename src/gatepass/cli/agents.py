"""``gatepass agent ...`` and the kill switch ``gatepass revoke AGENT``."""

from __future__ import annotations

from typing import Any

import click

from gatepass.cli.common import json_option, limit_options, limits_from, merge_limits, open_app, split_values
from gatepass.cli.output import echo_fields, echo_json, echo_table, fmt_time, iso, note
from gatepass.control import agents as agent_ops
from gatepass.model import Agent, KeyState, PolicyMode
from gatepass.units import parse_budget

__all__ = ["agent_json", "register"]

_MODE = click.Choice([m.value for m in PolicyMode])


def agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "name": agent.name,
        "owner": agent.owner,
        "email": agent.email,
        "description": agent.description,
        "status": agent.status.value,
        "status_reason": agent.status_reason,
        "mode": agent.mode.value,
        "budgets": [str(b) for b in agent.budgets],
        "limits": dict(agent.limits.items()),
        "created_at": iso(agent.created_at),
        "updated_at": iso(agent.updated_at),
    }


@click.group("agent")
def agent_group() -> None:
    """Agent accounts, named {project}-{agent-type}-{environment} (e.g. acme-research-dev)."""


@agent_group.command("create")
@click.argument("name")
@click.option("--owner", required=True, metavar="EMAIL", help="The person answerable for the agent.")
@click.option(
    "--email",
    metavar="AGENT_EMAIL",
    help="The agent's own address (default: the owner's with +NAME, e.g. me+acme-research-dev@example.com).",
)
@click.option(
    "--budget",
    "budgets",
    multiple=True,
    metavar="AMOUNT/PERIOD",
    help="USD limit per day, week, month or total, e.g. 50/month; repeat for several periods.",
)
@click.option("--description", default="", help="What the agent is for.")
@click.option(
    "--mode",
    type=_MODE,
    default="enforce",
    show_default=True,
    help="report: let requests that grants do not allow through, and record what would be denied.",
)
@limit_options
@click.pass_context
def agent_create(
    ctx: click.Context,
    name: str,
    owner: str,
    email: str | None,
    budgets: tuple[str, ...],
    description: str,
    mode: str,
    rpm: int | None,
    tpm: int | None,
    concurrency: int | None,
) -> None:
    """Create agent NAME, owned by --owner."""
    parsed = [parse_budget(b) for b in split_values(budgets)]
    with open_app(ctx).session() as session:
        agent = agent_ops.create_agent(
            session,
            name,
            owner=owner,
            email=email,
            description=description,
            budgets=parsed,
            mode=PolicyMode(mode),
            limits=limits_from(rpm, tpm, concurrency),
        )
    note(f"created agent {agent.name} (address {agent.email}, owner {agent.owner})")
    note(f"next: gatepass allow {agent.name} UPSTREAM, then gatepass key issue {agent.name}")


@agent_group.command("update")
@click.argument("name")
@click.option("--owner", metavar="EMAIL", help="New owner.")
@click.option("--email", metavar="AGENT_EMAIL", help="New agent address.")
@click.option(
    "--budget",
    "budgets",
    multiple=True,
    metavar="AMOUNT/PERIOD",
    help="Replace the budgets with these (repeat for several periods).",
)
@click.option("--no-budgets", is_flag=True, help="Remove every budget.")
@click.option("--description", help="New description.")
@click.option("--mode", type=_MODE, help="enforce or report.")
@limit_options
@click.pass_context
def agent_update(
    ctx: click.Context,
    name: str,
    owner: str | None,
    email: str | None,
    budgets: tuple[str, ...],
    no_budgets: bool,
    description: str | None,
    mode: str | None,
    rpm: int | None,
    tpm: int | None,
    concurrency: int | None,
) -> None:
    """Change agent NAME's owner, address, budgets, description, mode or rate limits (0 removes a limit)."""
    if budgets and no_budgets:
        raise click.UsageError("give --budget or --no-budgets, not both")
    parsed = [parse_budget(b) for b in split_values(budgets)] if budgets else ([] if no_budgets else None)
    with open_app(ctx).session() as session:
        current = agent_ops.get_agent(session.tx, name).limits
        agent = agent_ops.update_agent(
            session,
            name,
            owner=owner,
            email=email,
            description=description,
            budgets=parsed,
            mode=PolicyMode(mode) if mode else None,
            limits=merge_limits(current, rpm, tpm, concurrency),
        )
    note(
        f"agent {agent.name}: owner {agent.owner}, budgets {', '.join(map(str, agent.budgets)) or 'none'}, "
        f"mode {agent.mode.value}"
    )


@agent_group.command("list")
@json_option
@click.pass_context
def agent_list(ctx: click.Context, as_json: bool) -> None:
    """Every agent with its owner, status and budgets."""
    with open_app(ctx).read() as tx:
        items = tx.list_agents()
    if as_json:
        echo_json([agent_json(a) for a in items])
        return
    echo_table(
        ("name", "status", "owner", "budgets", "mode", "created"),
        [
            (
                a.name,
                a.status.value,
                a.owner,
                ", ".join(map(str, a.budgets)) or "-",
                a.mode.value,
                fmt_time(a.created_at),
            )
            for a in items
        ],
        empty="no agents; create one with gatepass agent create NAME --owner EMAIL",
    )


@agent_group.command("show")
@click.argument("name")
@json_option
@click.pass_context
def agent_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Agent NAME in full: identity, status, budgets, grants and keys."""
    app = open_app(ctx)
    with app.read() as tx:
        agent = agent_ops.get_agent(tx, name)
        grants = tx.list_grants(agent.id)
        keys = tx.list_keys(agent.id)
    now = app.now()
    active = [k for k in keys if k.state(now) is KeyState.ACTIVE]
    if as_json:
        echo_json(
            {
                **agent_json(agent),
                "grants": [
                    {
                        "id": g.id,
                        "upstream": g.upstream,
                        "models": list(g.models),
                        "methods": list(g.methods),
                        "paths": list(g.paths),
                    }
                    for g in grants
                ],
                "keys": {"active": len(active), "total": len(keys)},
            }
        )
        return
    echo_fields(
        {
            "name": agent.name,
            "status": agent.status.value + (f" ({agent.status_reason})" if agent.status_reason else ""),
            "owner": agent.owner,
            "address": agent.email,
            "description": agent.description or "-",
            "mode": agent.mode.value,
            "budgets": ", ".join(map(str, agent.budgets)) or "none",
            "created": fmt_time(agent.created_at),
            "grants": "; ".join(f"{g.id} {g.upstream} {g.scope_text()}" for g in grants) or "none (deny all)",
            "keys": f"{len(active)} active of {len(keys)}",
        }
    )


@agent_group.command("suspend")
@click.argument("name")
@click.option("--reason", default="suspended by its owner", help="Recorded in the audit log.")
@click.pass_context
def agent_suspend(ctx: click.Context, name: str, reason: str) -> None:
    """Refuse every request of agent NAME until it is resumed (its keys stay valid)."""
    with open_app(ctx).session() as session:
        agent_ops.suspend_agent(session, name, reason=reason)
    note(f"suspended agent {name}")


@agent_group.command("resume")
@click.argument("name")
@click.pass_context
def agent_resume(ctx: click.Context, name: str) -> None:
    """Let agent NAME work again (revoked keys stay revoked)."""
    with open_app(ctx).session() as session:
        agent_ops.resume_agent(session, name)
    note(f"resumed agent {name}")


@agent_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def agent_delete(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete agent NAME with its grants and keys (the audit log keeps its history)."""
    if not yes:
        click.confirm(f"delete agent {name}, its grants and its keys?", abort=True, err=True)
    with open_app(ctx).session() as session:
        revoked = agent_ops.delete_agent(session, name)
    note(f"deleted agent {name}; revoked {len(revoked)} key(s)")


@click.command("revoke")
@click.argument("agent")
@click.option("--reason", default="revoked by its owner", help="Recorded in the audit log.")
@click.pass_context
def revoke_command(ctx: click.Context, agent: str, reason: str) -> None:
    """Kill switch: suspend AGENT and revoke every key it holds, at once."""
    with open_app(ctx).session() as session:
        _, revoked = agent_ops.kill_agent(session, agent, reason=reason)
    click.echo(f"suspended agent {agent}")
    click.echo(f"revoked {len(revoked)} key(s)" + (f": {', '.join(revoked)}" if revoked else ""))


def register(cli: click.Group) -> None:
    cli.add_command(agent_group)
    cli.add_command(revoke_command)
