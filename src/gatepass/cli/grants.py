"""``gatepass allow``, ``gatepass grants``, ``gatepass disallow`` and ``gatepass check``."""

from __future__ import annotations

import click

from gatepass.cli.common import json_option, open_app, split_values
from gatepass.cli.output import echo_json, echo_table, fmt_time, iso, note
from gatepass.control import grants as grant_ops
from gatepass.control.agents import get_agent
from gatepass.control.upstreams import get_upstream
from gatepass.globs import parse_method
from gatepass.model import LEAK_ACTIONS, KeyRecord
from gatepass.policy.decision import Request, decide

__all__ = ["register"]


@click.command("allow")
@click.argument("agent")
@click.argument("upstream")
@click.option(
    "--models", multiple=True, metavar="GLOB", help="Models allowed (e.g. 'claude-haiku-*'); repeat or comma-separate."
)
@click.option(
    "--methods", multiple=True, metavar="METHOD", help="HTTP methods allowed (e.g. GET); repeat or comma-separate."
)
@click.option(
    "--paths",
    multiple=True,
    metavar="GLOB",
    help="Path globs allowed: * within a segment, ** across segments (e.g. /repos/acme/docs/**).",
)
@click.option(
    "--leaks",
    type=click.Choice(LEAK_ACTIONS),
    default="block",
    show_default=True,
    help="What the leak guard does with a request carrying a secret or credential: block it, "
    "redact the match and send it, or only report it.",
)
@click.pass_context
def allow_command(
    ctx: click.Context,
    agent: str,
    upstream: str,
    models: tuple[str, ...],
    methods: tuple[str, ...],
    paths: tuple[str, ...],
    leaks: str,
) -> None:
    """Grant AGENT the use of UPSTREAM, narrowed by models, methods and paths (deny by default)."""
    with open_app(ctx).session() as session:
        grant, created = grant_ops.add_grant(
            session,
            agent,
            upstream,
            models=split_values(models),
            methods=split_values(methods),
            paths=split_values(paths),
            leaks=leaks,
        )
    click.echo(grant.id)
    if created:
        note(f"granted {agent} {upstream}: {grant.scope_text()}")
    else:
        note(f"{agent} already has this grant ({grant.id}); nothing changed")


@click.command("grants")
@click.argument("agent")
@json_option
@click.pass_context
def grants_command(ctx: click.Context, agent: str, as_json: bool) -> None:
    """List AGENT's grants: upstream, models, methods and paths (no grant means deny all)."""
    with open_app(ctx).read() as tx:
        items = grant_ops.list_grants(tx, agent)
    if as_json:
        echo_json(
            [
                {
                    "id": g.id,
                    "agent": agent,
                    "upstream": g.upstream,
                    "models": list(g.models),
                    "methods": list(g.methods),
                    "paths": list(g.paths),
                    "leaks": g.leaks,
                    "created_at": iso(g.created_at),
                }
                for g in items
            ]
        )
        return
    echo_table(
        ("id", "upstream", "models", "methods", "paths", "leaks", "created"),
        [
            (
                g.id,
                g.upstream,
                ",".join(g.models) or "*",
                ",".join(g.methods) or "*",
                ",".join(g.paths) or "*",
                g.leaks,
                fmt_time(g.created_at),
            )
            for g in items
        ],
        empty=f"{agent} has no grants: every request is denied; add one with gatepass allow {agent} UPSTREAM",
    )


@click.command("disallow")
@click.argument("agent")
@click.argument("grant_id")
@click.pass_context
def disallow_command(ctx: click.Context, agent: str, grant_id: str) -> None:
    """Remove grant GRANT_ID from AGENT."""
    with open_app(ctx).session() as session:
        grant = grant_ops.remove_grant(session, agent, grant_id)
    note(f"removed grant {grant.id} ({grant.upstream}) from {agent}")


@click.command("check")
@click.argument("agent")
@click.argument("upstream")
@click.option("--model", help="The model the request names.")
@click.option("--method", default="POST", show_default=True, help="HTTP method.")
@click.option("--path", default="/", show_default=True, help="Path under the upstream, e.g. /v1/messages.")
@json_option
@click.pass_context
def check_command(
    ctx: click.Context, agent: str, upstream: str, model: str | None, method: str, path: str, as_json: bool
) -> None:
    """Explain what policy decides for a request of AGENT to UPSTREAM (with a valid key).

    Exit 0 when it would be allowed, 1 when denied.
    """
    app = open_app(ctx)
    with app.read() as tx:
        found = get_agent(tx, agent)
        get_upstream(tx, upstream)
        grants = tx.list_grants(found.id)
    now = app.now()
    probe = KeyRecord(id="(any valid key)", agent_id=found.id, created_at=now, expires_at=now.replace(year=9999))
    decision = decide(
        found, probe, Request(upstream=upstream, method=parse_method(method), path=path, now=now, model=model), grants
    )
    if as_json:
        echo_json(
            {
                "result": decision.result.value,
                "reason": decision.reason.value,
                "sentence": decision.sentence,
                "grant": decision.grant_id,
                "report_only": decision.report_only,
            }
        )
    else:
        click.echo(f"{decision.result.value}: {decision.reason.value}: {decision.sentence}")
    ctx.exit(0 if decision.allowed and not decision.report_only else 1)


def register(cli: click.Group) -> None:
    for command in (allow_command, grants_command, disallow_command, check_command):
        cli.add_command(command)
