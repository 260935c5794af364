"""``gatepass egress allow|list|rm``: the hosts an agent may reach through the egress proxy."""

from __future__ import annotations

import click

from gatepass.cli.common import json_option, open_app
from gatepass.cli.output import echo_json, echo_table, fmt_time, iso, note
from gatepass.control import egress as egress_ops
from gatepass.model import EgressRule
from gatepass.netguard import DEFAULT_PORTS

__all__ = ["register"]


def _host(rule: EgressRule) -> str:
    return f"[{rule.host}]" if ":" in rule.host else rule.host


def _ports(rule: EgressRule) -> str:
    return ",".join(str(p) for p in rule.ports or DEFAULT_PORTS)


@click.group("egress")
def egress_group() -> None:
    """Which hosts an agent may reach through the egress proxy (deny by default).

    \b
    Agents use the proxy with:
      HTTP_PROXY=http://AGENT:KEY@127.0.0.1:8790  HTTPS_PROXY=http://AGENT:KEY@127.0.0.1:8790
    Internal addresses (loopback, private networks, cloud metadata ...) stay refused whatever the
    allowlist says, unless [egress] allow_networks in config.toml opens them.
    """


@egress_group.command("allow")
@click.argument("agent")
@click.argument("hosts", nargs=-1, required=True, metavar="HOST[:PORT[,PORT]]...")
@click.pass_context
def allow_command(ctx: click.Context, agent: str, hosts: tuple[str, ...]) -> None:
    """Let AGENT reach HOSTS: a name (api.example.com), its subdomains (*.example.com) or an IP.

    Without ports a host is open on 80 and 443. Allowing a host again adds ports to its rule.
    """
    with open_app(ctx).session() as session:
        results = egress_ops.allow_egress(session, agent, hosts)
    for rule, changed in results:
        click.echo(rule.id)
        what = f"{_host(rule)} on ports {_ports(rule)}"
        note(f"{agent} may reach {what}" if changed else f"{agent} may already reach {what}; nothing changed")


@egress_group.command("list")
@click.argument("agent", required=False)
@json_option
@click.pass_context
def list_command(ctx: click.Context, agent: str | None, as_json: bool) -> None:
    """List the egress rules of AGENT, or of every agent."""
    with open_app(ctx).read() as tx:
        items = egress_ops.list_egress(tx, agent)
    if as_json:
        echo_json(
            [
                {
                    "id": rule.id,
                    "agent": name,
                    "host": rule.host,
                    "ports": list(rule.ports or DEFAULT_PORTS),
                    "created_at": iso(rule.created_at),
                }
                for name, rule in items
            ]
        )
        return
    echo_table(
        ("agent", "host", "ports", "id", "created"),
        [(name, _host(rule), _ports(rule), rule.id, fmt_time(rule.created_at)) for name, rule in items],
        empty=(
            f"{agent} may reach no host through the proxy; allow one with gatepass egress allow {agent} HOST"
            if agent
            else "no agent may reach any host through the proxy; allow one with gatepass egress allow AGENT HOST"
        ),
    )


@egress_group.command("rm")
@click.argument("agent")
@click.argument("host")
@click.pass_context
def rm_command(ctx: click.Context, agent: str, host: str) -> None:
    """Take HOST (with all its ports) off AGENT's allowlist."""
    with open_app(ctx).session() as session:
        rule = egress_ops.remove_egress(session, agent, host)
    note(f"{agent} may no longer reach {_host(rule)} (rule {rule.id} removed)")


def register(cli: click.Group) -> None:
    cli.add_command(egress_group)
