"""``gatepass secret ...`` and ``gatepass upstream ...``: the vault and where its credentials go."""

from __future__ import annotations

import sys

import click

from gatepass.cli.common import json_option, open_app
from gatepass.cli.output import echo_json, echo_table, fmt_time, iso, note
from gatepass.control import credentials
from gatepass.control import upstreams as upstream_ops
from gatepass.control.credentials import upstream_secret_status
from gatepass.model import AuthStyle, UpstreamType
from gatepass.sensitive import Secret

__all__ = ["register"]


def _read_value(prompt: str) -> Secret:
    """The secret value from stdin, or from a hidden prompt on a terminal; never from argv."""
    if sys.stdin is not None and sys.stdin.isatty():
        return Secret(click.prompt(prompt, hide_input=True, confirmation_prompt=True, err=True))
    return Secret(sys.stdin.read())


@click.group("secret")
def secret_group() -> None:
    """Upstream credentials, encrypted at rest (AES-256-GCM). Values are read from stdin, never argv."""


@secret_group.command("add")
@click.argument("name")
@click.option(
    "--upstream",
    required=True,
    metavar="UPSTREAM",
    help="The upstream this credential is for (anthropic, openai, github, or one you added).",
)
@click.pass_context
def secret_add(ctx: click.Context, name: str, upstream: str) -> None:
    """Store a new credential NAME for UPSTREAM; the value comes from stdin.

    \b
    printenv ANTHROPIC_API_KEY | gatepass secret add anthropic-main --upstream anthropic
    gatepass secret add github-docs --upstream github < token.txt

    Naming a preset upstream (anthropic, openai, github) that does not exist yet creates it.
    """
    app = open_app(ctx)
    value = _read_value(f"value of secret {name}")
    with app.session() as session:
        info, notes = credentials.add_secret(session, name, upstream, value)
    note(f"stored secret {info.name} for upstream {info.upstream} (fingerprint {info.fingerprint})")
    for line in notes:
        note(line)


@secret_group.command("rotate")
@click.argument("name")
@click.pass_context
def secret_rotate(ctx: click.Context, name: str) -> None:
    """Replace the value of secret NAME (read from stdin)."""
    app = open_app(ctx)
    value = _read_value(f"new value of secret {name}")
    with app.session() as session:
        info = credentials.rotate_secret(session, name, value)
    note(f"rotated secret {info.name} (fingerprint {info.fingerprint})")


@secret_group.command("rm")
@click.argument("name")
@click.pass_context
def secret_rm(ctx: click.Context, name: str) -> None:
    """Delete secret NAME from the vault."""
    with open_app(ctx).session() as session:
        orphans = credentials.remove_secret(session, name)
    note(f"removed secret {name}")
    for upstream in orphans:
        note(f"upstream {upstream} now has no credential: add one with gatepass secret add NAME --upstream {upstream}")


@secret_group.command("list")
@json_option
@click.pass_context
def secret_list(ctx: click.Context, as_json: bool) -> None:
    """Names, upstreams, dates and fingerprints of the vault's secrets (never their values)."""
    with open_app(ctx).read() as tx:
        items = credentials.list_secrets(tx)
    if as_json:
        echo_json(
            [
                {
                    "name": s.name,
                    "upstream": s.upstream,
                    "fingerprint": s.fingerprint,
                    "created_at": iso(s.created_at),
                    "rotated_at": iso(s.rotated_at),
                }
                for s in items
            ]
        )
        return
    echo_table(
        ("name", "upstream", "fingerprint", "created", "rotated"),
        [(s.name, s.upstream, s.fingerprint, fmt_time(s.created_at), fmt_time(s.rotated_at)) for s in items],
        empty="no secrets; add one with gatepass secret add NAME --upstream UPSTREAM",
    )


_TYPES = click.Choice([t.value for t in UpstreamType])


@click.group("upstream")
def upstream_group() -> None:
    """Where agent requests go: presets anthropic, openai, github, and generic http upstreams."""


@upstream_group.command("add")
@click.argument("name")
@click.option("--type", "type_", required=True, type=_TYPES, help="A preset, or http for any HTTP API.")
@click.option("--base-url", metavar="URL", help="Where requests go (presets have a default; tests point it at a fake).")
@click.option("--auth", metavar="STYLE", help="http only: bearer (default), basic, none or header:NAME.")
@click.option("--secret", "secret_name", metavar="SECRET_NAME", help="The vault secret this upstream sends.")
@click.pass_context
def upstream_add(
    ctx: click.Context, name: str, type_: str, base_url: str | None, auth: str | None, secret_name: str | None
) -> None:
    """Add upstream NAME, served at /NAME/... on the gateway."""
    with open_app(ctx).session() as session:
        upstream = upstream_ops.add_upstream(
            session,
            name,
            UpstreamType(type_),
            base_url=base_url,
            auth=AuthStyle.parse(auth) if auth else None,
            secret_name=secret_name,
        )
        status = upstream_secret_status(session.tx, upstream.name)
    note(f"added upstream {upstream.name} ({upstream.type.value}, {upstream.base_url})")
    if status == "missing":
        note(f"secret {secret_name} is not in the vault yet: gatepass secret add {secret_name} --upstream {name}")


@upstream_group.command("update")
@click.argument("name")
@click.option("--base-url", metavar="URL", help="New base URL.")
@click.option("--auth", metavar="STYLE", help="http only: bearer, basic, none or header:NAME.")
@click.option("--secret", "secret_name", metavar="SECRET_NAME", help="Send this vault secret from now on.")
@click.pass_context
def upstream_update(
    ctx: click.Context, name: str, base_url: str | None, auth: str | None, secret_name: str | None
) -> None:
    """Change upstream NAME's base URL, auth style or secret."""
    with open_app(ctx).session() as session:
        upstream = upstream_ops.update_upstream(
            session, name, base_url=base_url, auth=AuthStyle.parse(auth) if auth else None, secret_name=secret_name
        )
    note(f"upstream {upstream.name}: {upstream.base_url}, auth {upstream.auth}, secret {upstream.secret_name or '-'}")


@upstream_group.command("rm")
@click.argument("name")
@click.pass_context
def upstream_rm(ctx: click.Context, name: str) -> None:
    """Remove upstream NAME (refused while a grant still uses it)."""
    with open_app(ctx).session() as session:
        upstream_ops.remove_upstream(session, name)
    note(f"removed upstream {name}")


@upstream_group.command("list")
@json_option
@click.pass_context
def upstream_list(ctx: click.Context, as_json: bool) -> None:
    """The upstreams, their base URLs, auth styles and secrets."""
    with open_app(ctx).read() as tx:
        items = [(u, upstream_secret_status(tx, u.name)) for u in tx.list_upstreams()]
    if as_json:
        echo_json(
            [
                {
                    "name": u.name,
                    "type": u.type.value,
                    "base_url": u.base_url,
                    "auth": str(u.auth),
                    "secret": u.secret_name,
                    "secret_status": status,
                    "created_at": iso(u.created_at),
                }
                for u, status in items
            ]
        )
        return
    echo_table(
        ("name", "type", "base url", "auth", "secret"),
        [
            (u.name, u.type.value, u.base_url, str(u.auth), f"{u.secret_name} ({status})" if u.secret_name else "-")
            for u, status in items
        ],
        empty="no upstreams; add one with gatepass upstream add NAME --type TYPE",
    )


def register(cli: click.Group) -> None:
    cli.add_command(secret_group)
    cli.add_command(upstream_group)
