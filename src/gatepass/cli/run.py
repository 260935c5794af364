"""``gatepass run AGENT -- CMD ...``: start an agent with a key of its own and nothing of its owner's."""

from __future__ import annotations

import click

from gatepass.cli.common import open_app
from gatepass.cli.output import note
from gatepass.control.run import RunRequest, run_agent
from gatepass.units import parse_duration

__all__ = ["register"]


@click.command("run")
@click.argument("agent")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD [ARG]...")
@click.option(
    "--ttl",
    metavar="DURATION",
    help="Lifetime of the run's key, e.g. 30m, 8h (default: the default key TTL, see gatepass key defaults; "
    "1h unless changed). It bounds the key even if gatepass itself is killed.",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Run CMD in a bubblewrap sandbox (Linux): no network but the gateway, credential files hidden.",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    metavar="NAME[=VALUE]",
    help="Pass NAME from your environment, or set it to VALUE; repeatable.",
)
@click.pass_context
def run_command(
    ctx: click.Context, agent: str, command: tuple[str, ...], ttl: str | None, sandbox: bool, env: tuple[str, ...]
) -> int:
    """Run CMD as AGENT, with a key of its own that is revoked when CMD exits.

    \b
    CMD's environment is built from an allowlist, never copied from yours:
      PATH HOME LANG LC_* TERM TZ USER LOGNAME SHELL, the names under [run] env in
      config.toml, and --env; then the agent's canary decoys, and gatepass's own:
      GATEPASS_KEY, GATEPASS_URL (the gateway), and for each upstream it is granted
        anthropic  ANTHROPIC_BASE_URL=$GATEPASS_URL/<upstream>  ANTHROPIC_API_KEY
        openai     OPENAI_BASE_URL=$GATEPASS_URL/<upstream>/v1  OPENAI_API_KEY
        github     GITHUB_API_URL=$GATEPASS_URL/<upstream>  GITHUB_TOKEN  GH_TOKEN
        http       GATEPASS_<UPSTREAM>_URL=$GATEPASS_URL/<upstream>
      (two upstreams of one type: the one named like the type, else the first by name),
      HTTP(S)_PROXY / http(s)_proxy (the egress proxy, authenticated by the key) and
      NO_PROXY / no_proxy (the gateway's host). These names cannot be set with --env.

    Uses the home's running gateway, or starts one for the run on a free loopback port.
    The key is revoked however CMD ends; only SIGKILL of gatepass skips that, and then the
    key's TTL ends it. SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH are
    passed to CMD, which runs in a session of its own; after a stop signal it has
    [run] grace_seconds (default 10) to exit before SIGKILL. Exit status: CMD's, 128+N if
    it died of signal N, 127 if it was not found.

    \b
    --sandbox (needs bwrap: apt-get install bubblewrap / dnf install bubblewrap):
      network: none but the gateway (LLM routes and egress proxy), reached at 127.0.0.1:8790
      files: all read-only but the working folder; private /tmp and /run; hidden:
        ~/.ssh ~/.aws ~/.config/gcloud ~/.azure ~/.kube ~/.docker/config.json ~/.netrc
        ~/.pgpass ~/.git-credentials ~/.config/gh ~/.gnupg ~/.npmrc ~/.pypirc ~/.vault-token,
        .env, .env.* and .envrc files in the working folder, the gatepass home and store,
        and [run] hide in config.toml
    Without --sandbox, CMD runs as you: it gets none of your variables, but it can read
    what you can read (your files, your other processes' environments).
    """
    lifetime = parse_duration(ttl, what="TTL") if ttl else None
    request = RunRequest(agent=agent, command=command, ttl=lifetime, sandbox=sandbox, env=env)
    return run_agent(open_app(ctx), request, note=note)


def register(cli: click.Group) -> None:
    cli.add_command(run_command)
