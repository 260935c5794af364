"""``gatepass run``: an agent started with a key of its own, revoked when it exits, and nothing of its owner's.

A run, in order:

1. check what can be checked before anything changes: ``--env`` and ``[run] env`` names, and with
   ``--sandbox`` that bwrap works and what it must hide (nothing is issued when this fails);
2. issue a key for the agent (audited; bound to the gateway's loopback address when it has one) and
   read its granted upstreams and canaries, in one session;
3. use the running gateway of the home, or start one in this process on a free loopback port;
4. build the child's environment (:mod:`gatepass.runner.environment`), plant decoy files, start the
   child (in the sandbox with ``--sandbox``) and pass it signals until it exits;
5. whatever happened (exit, signal, error in gatepass): remove the decoy files, stop the gateway
   it started, and revoke the key (audited; a running gateway is told at once).

Only SIGKILL of gatepass itself skips step 5; the key then expires at its TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gatepass.control.agents import get_agent
from gatepass.control.app import Gatepass
from gatepass.control.canaries import planted_environment, planted_files
from gatepass.control.keys import issue_key, revoke_key
from gatepass.control.runtime import read_gateway_info
from gatepass.errors import GatepassError
from gatepass.model import Upstream, UpstreamType
from gatepass.runner.environment import (
    Endpoint,
    check_names,
    child_environment,
    gatepass_variables,
    parse_env_options,
    pick_upstreams,
)
from gatepass.runner.plant import plant_files
from gatepass.runner.sandbox import INSIDE, Sandbox, run_sandboxed
from gatepass.runner.supervise import Signals, launch_failure, protect_process, start_process, supervise
from gatepass.sensitive import Secret
from gatepass.units import format_duration

__all__ = ["RunRequest", "run_agent"]

Note = Callable[[str], None]
_OWN_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What ``gatepass run`` was asked: the agent, its command and the options."""

    agent: str
    command: tuple[str, ...]
    ttl: timedelta | None = None
    sandbox: bool = False
    #: ``--env NAME`` and ``--env NAME=VALUE`` items, as typed (a value may be a secret: not in the repr).
    env: tuple[str, ...] = field(default=(), repr=False)
    cwd: Path | None = None


@dataclass(frozen=True, slots=True)
class _Grant:
    """What the session read for the run (the key lives only here and in the child's environment)."""

    key: Secret
    key_id: str
    lifetime: timedelta
    agent: str
    upstreams: tuple[Upstream, ...]
    decoys: dict[str, str] = field(repr=False)
    files: list[tuple[str, str]] = field(repr=False)


def _private_paths(app: Gatepass) -> list[Path]:
    """The gatepass home, and the SQLite store (and its journals) when it lives elsewhere."""
    paths = [app.home.path]
    with suppress(ArgumentError):
        url = make_url(app.store_url)
        if url.get_backend_name() == "sqlite" and url.database:
            store = Path(url.database)
            paths += [store.with_name(store.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    return paths


def _running_gateway(app: Gatepass) -> Endpoint | None:
    info = read_gateway_info(app.home)
    return None if info is None else Endpoint.from_url(info.listen)


def _issue(app: Gatepass, request: RunRequest, gateway: Endpoint | None) -> _Grant:
    # A key used only through a loopback gateway is bound to that address: worthless off this host.
    bound = gateway.loopback_address() if gateway else _OWN_HOST
    with app.session() as session:
        key, record = issue_key(session, request.agent, ttl=request.ttl, cidrs=[bound] if bound else [])
        tx = session.tx
        agent = get_agent(tx, request.agent)
        upstreams = tuple(u for g in tx.list_grants(agent.id) if (u := tx.get_upstream(g.upstream)) is not None)
        return _Grant(
            key=key,
            key_id=record.id,
            lifetime=record.expires_at - record.created_at,
            agent=agent.name,
            upstreams=tuple({u.name: u for u in upstreams}.values()),
            decoys=planted_environment(tx, app.vault, agent.id),
            files=planted_files(tx, app.vault, agent.id),
        )


class _Run:
    """The asynchronous part of a run: gateway, child, signals."""

    def __init__(
        self,
        app: Gatepass,
        request: RunRequest,
        grant: _Grant,
        *,
        extra: dict[str, str],
        sandbox: Sandbox | None,
        cwd: Path,
        note: Note,
    ) -> None:
        self.app, self.request, self.grant, self.extra = app, request, grant, extra
        self.sandbox, self.cwd, self.note = sandbox, cwd, note
        #: True once the agent's command (or the sandbox around it) was started.
        self.started = False

    async def main(self, gateway: Endpoint | None, signals: Signals) -> int:
        with signals.on_loop(asyncio.get_running_loop()):
            if gateway is not None:
                self.note(f"gatepass: using the running gateway at {gateway.url}")
                return await self._child(gateway, signals)
            return await self._with_own_gateway(signals)

    async def _with_own_gateway(self, signals: Signals) -> int:
        """A gateway of the run's own, in this process, on its own opened home (so that the caller's
        keeps telling a gateway about changes)."""
        from gatepass.control.serve import GatewayService  # the data plane loads only when a run needs it

        own = Gatepass.open(env=self.app.env, clock=self.app.clock, actor=self.app.actor)
        try:
            service = GatewayService(own, listen=f"{_OWN_HOST}:0", admin_listen=f"{_OWN_HOST}:0")
            await service.start()
            try:
                endpoint = Endpoint.from_url(service.data_url)
                self.note(f"gatepass: started a gateway for this run at {endpoint.url}; it stops when the agent exits")
                return await self._child(endpoint, signals)
            finally:
                await service.stop()
        finally:
            own.close()

    async def _child(self, gateway: Endpoint, signals: Signals) -> int:
        if signals.stop_signal is not None:
            return 128 + signals.stop_signal
        grant, config = self.grant, self.app.config.run
        variables = gatepass_variables(
            key=grant.key,
            agent=grant.agent,
            endpoint=INSIDE if self.sandbox else gateway,
            upstreams=grant.upstreams,
        )
        env = child_environment(
            self.app.env, passthrough=config.env, extra=self.extra, planted=grant.decoys, gatepass=variables
        )
        env["PWD"] = str(self.cwd)
        planted = plant_files(self.cwd, grant.files)
        self.started = True
        try:
            if self.sandbox is not None:
                return await run_sandboxed(
                    self.sandbox, self.request.command, env=env, gateway=gateway, signals=signals
                )
            try:
                process = await start_process(self.request.command, env=env, cwd=str(self.cwd))
            except OSError as exc:
                code, message = launch_failure(exc, self.request.command[0])
                self.note(f"gatepass: error: {message}")
                return code
            return await supervise(process, signals)
        finally:
            planted.remove()


def _describe_choice(upstreams: Sequence[Upstream]) -> str | None:
    """A note when an agent has two upstreams of one type: which one the type's variables point at."""
    chosen = pick_upstreams(upstreams)
    parts = []
    for kind, upstream in chosen.items():
        others = sorted(u.name for u in upstreams if u.type is kind and u is not upstream)
        if others and kind is not UpstreamType.HTTP:
            parts.append(f"{kind.value} variables point at upstream {upstream.name}, not {', '.join(others)}")
    if not parts:
        return None
    return f"gatepass: {'; '.join(parts)} (reach any upstream at $GATEPASS_URL/<upstream>)"


def run_agent(app: Gatepass, request: RunRequest, *, note: Note) -> int:
    """Run the agent's command; returns its exit status (128+N after signal N)."""
    config = app.config.run
    check_names(config.env, where="config.toml [run] env")
    extra = parse_env_options(request.env, app.env)
    cwd = (request.cwd or Path.cwd()).resolve()
    sandbox = None
    if request.sandbox:
        home = app.env.get("HOME")
        sandbox = Sandbox.prepare(
            search_path=app.env.get("PATH"),
            cwd=cwd,
            home=Path(home) if home else None,
            private=_private_paths(app),
            extra=config.hide,
        )
    protect_process()
    gateway = _running_gateway(app)
    with Signals(config.grace_seconds) as signals:
        grant = _issue(app, request, gateway)
        run = _Run(app, request, grant, extra=extra, sandbox=sandbox, cwd=cwd, note=note)
        outcome = "gatepass run failed"
        try:
            note(
                f"gatepass: running {request.command[0]} as {grant.agent} with key {grant.key_id} "
                f"(valid {format_duration(grant.lifetime)} at most)"
            )
            choice = _describe_choice(grant.upstreams)
            if choice:
                note(choice)
            status = asyncio.run(run.main(gateway, signals))
            outcome = f"the agent exited with status {status}" if run.started else "stopped before the agent started"
            if signals.killed:
                note(f"gatepass: the agent did not stop within {config.grace_seconds:g}s: killed it")
        finally:
            _revoke(app, grant.key_id, outcome)
            note(f"gatepass: revoked key {grant.key_id} ({outcome})")
    return status


def _revoke(app: Gatepass, key_id: str, outcome: str) -> None:
    try:
        with app.session() as session:
            revoke_key(session, key_id, reason=f"gatepass run ended: {outcome}")
    except GatepassError as exc:
        raise GatepassError(
            f"could not revoke the run's key {key_id} ({exc.message}): revoke it with gatepass key revoke {key_id}"
        ) from exc
