"""Grants: what an agent may use. Deny by default; each grant opens one upstream, narrowed by globs."""

from __future__ import annotations

from collections.abc import Sequence

from gatepass.control.agents import get_agent
from gatepass.control.app import Session
from gatepass.control.upstreams import get_upstream
from gatepass.errors import InvalidInputError, NotFoundError
from gatepass.globs import parse_method, parse_model_glob, parse_path_glob
from gatepass.keyformat import new_id
from gatepass.model import LEAK_ACTIONS, Grant, UpstreamType
from gatepass.store import Transaction

__all__ = ["GrantScope", "add_grant", "check_leak_action", "list_grants", "normalise_scope", "remove_grant"]

GrantScope = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
_LLM_TYPES = (UpstreamType.ANTHROPIC, UpstreamType.OPENAI)


def normalise_scope(
    upstream_type: UpstreamType, models: Sequence[str], methods: Sequence[str], paths: Sequence[str]
) -> GrantScope:
    """Validate the globs and give them one canonical order, so equal grants compare equal."""
    if models and upstream_type not in _LLM_TYPES:
        raise InvalidInputError(
            f"--models applies to LLM upstreams (anthropic, openai), not to a "
            f"{upstream_type.value} upstream: narrow it with --methods and --paths"
        )
    model_globs = sorted({parse_model_glob(m).text for m in models})
    method_set = sorted({parse_method(m) for m in methods})
    if "*" in method_set:
        method_set = []
    path_globs = sorted({parse_path_glob(p).text for p in paths})
    return tuple(model_globs), tuple(method_set), tuple(path_globs)


def add_grant(
    session: Session,
    agent_name: str,
    upstream_name: str,
    *,
    models: Sequence[str] = (),
    methods: Sequence[str] = (),
    paths: Sequence[str] = (),
    leaks: str = "block",
) -> tuple[Grant, bool]:
    """Allow an agent an upstream; an identical grant that exists is returned with ``created=False``."""
    agent = get_agent(session.tx, agent_name)
    upstream = get_upstream(session.tx, upstream_name)
    scope = normalise_scope(upstream.type, models, methods, paths)
    leaks = check_leak_action(leaks)
    for grant in session.tx.list_grants(agent.id):
        if grant.upstream == upstream.name and (grant.models, grant.methods, grant.paths) == scope:
            if grant.leaks != leaks:
                raise InvalidInputError(
                    f"{agent.name} already has this grant ({grant.id}) with leaks={grant.leaks}: "
                    f"remove it first with gatepass disallow {agent.name} {grant.id}"
                )
            return grant, False
    grant = Grant(
        id=new_id("gr_", 8),
        agent_id=agent.id,
        upstream=upstream.name,
        models=scope[0],
        methods=scope[1],
        paths=scope[2],
        created_at=session.now,
        leaks=leaks,
    )
    session.tx.add_grant(grant)
    session.record(
        "grant.add",
        agent.name,
        {
            "grant": grant.id,
            "upstream": upstream.name,
            "models": list(scope[0]),
            "methods": list(scope[1]),
            "paths": list(scope[2]),
            "leaks": leaks,
        },
    )
    return grant, True


def check_leak_action(action: str) -> str:
    if action not in LEAK_ACTIONS:
        raise InvalidInputError(f"leak action {action!r} is not one of {', '.join(LEAK_ACTIONS)}")
    return action


def remove_grant(session: Session, agent_name: str, grant_id: str) -> Grant:
    agent = get_agent(session.tx, agent_name)
    for grant in session.tx.list_grants(agent.id):
        if grant.id == grant_id:
            session.tx.delete_grant(grant_id)
            session.record("grant.remove", agent.name, {"grant": grant_id, "upstream": grant.upstream})
            return grant
    raise NotFoundError(f"agent {agent_name!r} has no grant {grant_id!r}: see gatepass grants {agent_name}")


def list_grants(tx: Transaction, agent_name: str) -> list[Grant]:
    return tx.list_grants(get_agent(tx, agent_name).id)
