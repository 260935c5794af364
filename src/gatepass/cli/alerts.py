"""``gatepass alert ...``: spend thresholds per agent, and the webhook signing secret."""

from __future__ import annotations

import click

from gatepass.alerts.thresholds import parse_thresholds
from gatepass.cli.common import json_option, open_app
from gatepass.cli.output import echo_json, echo_table, note
from gatepass.control import alerts as alert_ops
from gatepass.control.runtime import webhook_secret
from gatepass.units import format_usd

__all__ = ["register"]


@click.group("alert")
def alert_group() -> None:
    """Spend thresholds: at $X in a period, warn, stop (suspend) or revoke; each fires once per period."""


@alert_group.command("add")
@click.argument("agent")
@click.argument("thresholds", nargs=-1, required=True)
@click.pass_context
def alert_add(ctx: click.Context, agent: str, thresholds: tuple[str, ...]) -> None:
    """Add thresholds to AGENT, written [$]AMOUNT[/PERIOD]:ACTION (period month unless given).

    \b
    gatepass alert add acme-research-dev 10:warn 50:stop 100:revoke
    gatepass alert add acme-research-dev 5/day:warn
    """
    parsed = parse_thresholds(thresholds)
    with open_app(ctx).session() as session:
        result = alert_ops.add_alerts(session, agent, parsed)
    note(f"{agent}: {', '.join(str(t) for t in result)}")


@alert_group.command("rm")
@click.argument("agent")
@click.argument("threshold")
@click.pass_context
def alert_rm(ctx: click.Context, agent: str, threshold: str) -> None:
    """Remove THRESHOLD (its id or its spelling, e.g. 50/month:stop) from AGENT."""
    with open_app(ctx).session() as session:
        removed = alert_ops.remove_alert(session, agent, threshold)
    note(f"removed {removed} from {agent}")


@alert_group.command("list")
@click.option("--agent", metavar="AGENT", help="Only this agent's thresholds.")
@json_option
@click.pass_context
def alert_list(ctx: click.Context, agent: str | None, as_json: bool) -> None:
    """Every agent's thresholds."""
    with open_app(ctx).read() as tx:
        found = alert_ops.list_alerts(tx, agent)
    rows = [
        (name, t.id, format_usd(t.amount_micros), t.period.value, t.action.value)
        for name, items in sorted(found.items())
        for t in items
    ]
    if as_json:
        echo_json([{"agent": r[0], "id": r[1], "amount": r[2], "period": r[3], "action": r[4]} for r in rows])
        return
    echo_table(
        ("agent", "id", "amount", "period", "action"),
        rows,
        empty="no thresholds; add some with gatepass alert add AGENT 10:warn 50:stop",
    )


@alert_group.command("webhook-secret")
@click.pass_context
def alert_webhook_secret(ctx: click.Context) -> None:
    """Print the secret that signs alert webhooks (x-gatepass-signature), for your receiver."""
    click.echo(webhook_secret(open_app(ctx).home).reveal())


def register(cli: click.Group) -> None:
    cli.add_command(alert_group)
