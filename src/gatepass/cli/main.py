"""The ``gatepass`` command: a thin layer over the control package.

Domain errors are caught once, here, and printed as one line on stderr; the exit code is 0 for
success, 1 for a failure or findings, 2 for a usage error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from gatepass.cli import agents, alerts, audit, canary, egress, gateway, grants, keys, policy, run, scan, vault
from gatepass.cli.output import note
from gatepass.control.app import init_home
from gatepass.errors import GatepassError
from gatepass.home import ENV_HOME, ENV_MASTER_KEY

__all__ = ["cli", "main"]

_HELP = f"""gatepass gives every AI agent accounts of its own: scoped, budgeted, audited,
revocable credentials in place of its owner's real keys.

\b
A first session:
  gatepass init
  printenv ANTHROPIC_API_KEY | gatepass secret add anthropic-main --upstream anthropic
  gatepass agent create acme-research-dev --owner me@example.com --budget 50/month
  gatepass allow acme-research-dev anthropic --models 'claude-haiku-*'
  gatepass key issue acme-research-dev --ttl 8h
  gatepass audit verify

\b
Environment:
  {ENV_HOME}        the home folder (default ~/.gatepass)
  {ENV_MASTER_KEY}  the vault's master key (default: master.key in the home)
  GATEPASS_STORE_URL   a SQLAlchemy URL for a shared store (PostgreSQL, MariaDB)
"""


@click.group(help=_HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="gatepass", prog_name="gatepass")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help=f"Work on this home instead of ${ENV_HOME} (~/.gatepass).",
)
def cli(home: str | None) -> None:
    if home:
        os.environ[ENV_HOME] = home


@cli.command("init")
def init_command() -> None:
    """Create the home: config, store, master key and audit signing key.

    Running it again changes nothing and says so. With GATEPASS_MASTER_KEY set, no key file is
    written: keep that key safe, it is the only way into the vault.
    """
    result = init_home(env=os.environ)
    if not result.created:
        note(f"gatepass home {result.home.path} is already initialised; nothing changed")
        return
    note(f"created gatepass home {result.home.path} (store {result.store})")
    if result.master_key_source == ENV_MASTER_KEY:
        note(f"the master key comes from {ENV_MASTER_KEY}: set it for every gatepass command")
    else:
        note(f"the master key is in {result.master_key_source}: back it up; without it the vault cannot be opened")
    note("next: gatepass secret add NAME --upstream anthropic < key-file")


for module in (agents, alerts, audit, canary, egress, gateway, grants, keys, policy, run, scan, vault):
    module.register(cli)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to sys.exit)."""
    os.umask(0o077)  # every file gatepass creates is private, whatever the caller's umask
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="gatepass", standalone_mode=False)
    except GatepassError as exc:
        note(f"gatepass: error: {exc.message}")
        return exc.exit_code
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "gatepass"
        message = exc.format_message()
        if "unexpected extra argument" in message:
            # Never echo stray arguments: they may be a secret typed where stdin was meant.
            message = "unexpected extra arguments (secret values are read from stdin, never from the command line)"
        note(f"gatepass: error: {message} (see {where} --help)")
        return exc.exit_code
    except click.ClickException as exc:
        note(f"gatepass: error: {exc.format_message()}")
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        note("gatepass: aborted; nothing changed")
        return 1
    except OSError as exc:
        note(
            f"gatepass: error: {exc.strerror or exc.__class__.__name__}"
            + (f": {exc.filename}" if exc.filename else "")
            + "; check the path and its permissions"
        )
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
