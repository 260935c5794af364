"""``gatepass serve`` and ``gatepass spend``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import click

from gatepass.cli.common import json_option, open_app
from gatepass.cli.output import echo_json, echo_table, note
from gatepass.control.runtime import call_gateway
from gatepass.control.spendreport import spend_report, store_totals
from gatepass.errors import NotFoundError

if TYPE_CHECKING:
    from gatepass.control.serve import GatewayService

__all__ = ["register"]


@click.command("serve")
@click.option(
    "--listen", metavar="HOST:PORT", help="Data plane: agent traffic (default from config.toml, 127.0.0.1:8790)."
)
@click.option(
    "--admin-listen",
    metavar="HOST:PORT",
    help="Control plane: health, /metrics, admin API (default 127.0.0.1:8791; admin token required).",
)
@click.pass_context
def serve_command(ctx: click.Context, listen: str | None, admin_listen: str | None) -> None:
    """Run the gateway: agents call http://HOST:PORT/{upstream}/... with their gatepass keys.

    \b
    ANTHROPIC_BASE_URL=http://127.0.0.1:8790/anthropic  ANTHROPIC_API_KEY=<gatepass key>
    OPENAI_BASE_URL=http://127.0.0.1:8790/openai/v1     OPENAI_API_KEY=<gatepass key>

    Stops cleanly on SIGTERM or Ctrl-C: in-flight requests finish, spend and the audit log are written.
    """
    # Imported here, not at the top: the data plane is heavy and only this command needs it.
    from gatepass.control.serve import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = open_app(ctx)

    def ready(service: GatewayService) -> None:
        note(f"gatepass gateway for {app.home.path}")
        note(
            f"  data plane    {service.data_url}/{{upstream}}/...  ({len(service.state.upstreams)} upstreams, "
            f"{len(service.state.agents)} agents, {len(service.state.keys)} keys)"
        )
        note(f"  control plane {service.admin_url}  (token in {app.home.path / 'admin.token'})")

    serve(app, listen=listen, admin_listen=admin_listen, ready=ready)
    note("gatepass gateway stopped")


@click.command("spend")
@click.option("--agent", metavar="AGENT", help="Only this agent.")
@json_option
@click.pass_context
def spend_command(ctx: click.Context, agent: str | None, as_json: bool) -> None:
    """Spend against each budget, per agent (and per key with budgets), per UTC period.

    Live figures from the running gateway (reservations of requests in flight included);
    from the store when no gateway runs.
    """
    app = open_app(ctx)
    report = call_gateway(app.home, "GET", "/v1/spend")
    if report is None:
        now = app.now()
        with app.read() as tx:
            spend = store_totals(tx.current_spend(now))
            report = spend_report(tx.list_agents(), tx.list_keys(), now, spend, source="store")
    if agent is not None:
        report["agents"] = [a for a in report["agents"] if a["agent"] == agent]
        if not report["agents"]:
            raise NotFoundError(f"unknown agent {agent!r}: see gatepass agent list")
    if as_json:
        echo_json(report)
        return
    rows = []
    for item in report["agents"]:
        for scope, name, periods in [("agent", item["agent"], item["periods"])] + [
            ("key", k["key"], k["periods"]) for k in item["keys"]
        ]:
            for line in periods:
                if line["spent_micros"] or line["budget_micros"] is not None:
                    left = "-" if line["left_micros"] is None else f"${line['left_micros'] / 1e6:,.2f}"
                    rows.append(
                        (
                            name if scope == "agent" else f"  {name}",
                            line["period"],
                            line["spent"],
                            line["budget"] or "-",
                            left,
                        )
                    )
    echo_table(("agent / key", "period", "spent", "budget", "left"), rows, empty="no spend and no budgets yet")
    note(f"figures from the {report['source']} at {report['at']}")


def register(cli: click.Group) -> None:
    cli.add_command(serve_command)
    cli.add_command(spend_command)
