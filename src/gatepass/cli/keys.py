"""``gatepass key ...``: issue, list and revoke gatepass keys; key defaults."""

from __future__ import annotations

import click

from gatepass.cli.common import json_option, limit_options, limits_from, open_app, split_values
from gatepass.cli.output import echo_json, echo_table, fmt_time, iso, note
from gatepass.control import keys as key_ops
from gatepass.control.agents import get_agent
from gatepass.model import KeyState
from gatepass.units import format_duration, parse_budget, parse_duration

__all__ = ["register"]


@click.group("key")
def key_group() -> None:
    """Gatepass keys: what an agent holds instead of a real credential."""


@key_group.command("issue")
@click.argument("agent")
@click.option(
    "--ttl", metavar="DURATION", help="Lifetime, e.g. 30m, 8h, 7d (default and maximum: gatepass key defaults)."
)
@click.option("--uses", type=int, metavar="N", help="Number of requests the key may make; 1 = single use.")
@click.option(
    "--cidr",
    "cidrs",
    multiple=True,
    metavar="CIDR",
    help="Accept the key only from these source addresses (e.g. 127.0.0.1, 10.0.0.0/8); repeatable.",
)
@click.option(
    "--budget", "budgets", multiple=True, metavar="AMOUNT/PERIOD", help="A budget for this key alone, e.g. 5/day."
)
@click.option(
    "--upstream",
    "upstreams",
    multiple=True,
    metavar="NAME",
    help="Limit the key to these upstreams (default: all the agent is granted); repeatable.",
)
@limit_options
@click.pass_context
def key_issue(
    ctx: click.Context,
    agent: str,
    ttl: str | None,
    uses: int | None,
    cidrs: tuple[str, ...],
    budgets: tuple[str, ...],
    upstreams: tuple[str, ...],
    rpm: int | None,
    tpm: int | None,
    concurrency: int | None,
) -> None:
    """Issue a key for AGENT and print it, alone, on stdout. It is shown this once and never stored."""
    lifetime = parse_duration(ttl, what="TTL") if ttl else None
    parsed_budgets = [parse_budget(b) for b in split_values(budgets)]
    with open_app(ctx).session() as session:
        key, record = key_ops.issue_key(
            session,
            agent,
            ttl=lifetime,
            uses=uses,
            cidrs=split_values(cidrs),
            budgets=parsed_budgets,
            upstreams=split_values(upstreams),
            limits=limits_from(rpm, tpm, concurrency),
        )
    click.echo(key.reveal())
    limits = [f"expires {fmt_time(record.expires_at)}"]
    if record.max_uses is not None:
        limits.append(f"{record.max_uses} use(s)")
    if record.cidrs:
        limits.append(f"from {', '.join(record.cidrs)}")
    note(f"issued key {record.id} for {agent} ({'; '.join(limits)}); it is shown only this once")


@key_group.command("list")
@click.option("--agent", metavar="AGENT", help="Only this agent's keys.")
@click.option("--all", "show_all", is_flag=True, help="Include revoked, expired and used-up keys.")
@json_option
@click.pass_context
def key_list(ctx: click.Context, agent: str | None, show_all: bool, as_json: bool) -> None:
    """Keys with their agent, scopes, expiry, uses left and last use (never the keys themselves)."""
    app = open_app(ctx)
    with app.read() as tx:
        agents = {a.id: a.name for a in tx.list_agents()}
        agent_id = None
        if agent is not None:
            agent_id = get_agent(tx, agent).id
        records = tx.list_keys(agent_id)
    now = app.now()
    rows = [(r, r.state(now)) for r in records]
    if not show_all and not as_json:
        rows = [(r, s) for r, s in rows if s is KeyState.ACTIVE]
    if as_json:
        echo_json(
            [
                {
                    "id": r.id,
                    "agent": agents.get(r.agent_id),
                    "state": s.value,
                    "created_at": iso(r.created_at),
                    "expires_at": iso(r.expires_at),
                    "max_uses": r.max_uses,
                    "uses_left": r.uses_left,
                    "cidrs": list(r.cidrs),
                    "upstreams": list(r.upstreams),
                    "budgets": [str(b) for b in r.budgets],
                    "limits": dict(r.limits.items()),
                    "last_used_at": iso(r.last_used_at),
                    "last_used_ip": r.last_used_ip,
                    "revoked_at": iso(r.revoked_at),
                    "revoked_reason": r.revoked_reason,
                }
                for r, s in rows
            ]
        )
        return
    echo_table(
        ("id", "agent", "state", "upstreams", "expires", "uses left", "last used"),
        [
            (
                r.id,
                agents.get(r.agent_id, "?"),
                s.value,
                ",".join(r.upstreams) or "all granted",
                fmt_time(r.expires_at),
                "-" if r.uses_left is None else r.uses_left,
                fmt_time(r.last_used_at),
            )
            for r, s in rows
        ],
        empty="no active keys" + ("" if show_all else " (--all shows revoked and expired ones)"),
    )


@key_group.command("revoke")
@click.argument("key_id")
@click.option("--reason", default="revoked by its owner", help="Recorded in the audit log.")
@click.pass_context
def key_revoke(ctx: click.Context, key_id: str, reason: str) -> None:
    """Revoke key KEY_ID at once."""
    with open_app(ctx).session() as session:
        _, done = key_ops.revoke_key(session, key_id, reason=reason)
    note(f"revoked key {key_id}" if done else f"key {key_id} was already revoked; nothing changed")


@key_group.command("defaults")
@click.option("--ttl", metavar="DURATION", help="Lifetime of keys issued without --ttl.")
@click.option("--max-ttl", metavar="DURATION", help="Longest lifetime any key may have.")
@json_option
@click.pass_context
def key_defaults(ctx: click.Context, ttl: str | None, max_ttl: str | None, as_json: bool) -> None:
    """Show, or set, the default and maximum key lifetimes."""
    app = open_app(ctx)
    if ttl or max_ttl:
        with app.session() as session:
            defaults = key_ops.set_key_defaults(
                session,
                default_ttl=parse_duration(ttl, what="TTL") if ttl else None,
                max_ttl=parse_duration(max_ttl, what="maximum TTL") if max_ttl else None,
            )
    else:
        with app.read() as tx:
            defaults = key_ops.get_key_defaults(tx)
    if as_json:
        echo_json({"default_ttl": format_duration(defaults.default_ttl), "max_ttl": format_duration(defaults.max_ttl)})
    else:
        click.echo(
            f"default TTL {format_duration(defaults.default_ttl)}, maximum TTL {format_duration(defaults.max_ttl)}"
        )


def register(cli: click.Group) -> None:
    cli.add_command(key_group)
