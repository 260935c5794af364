"""The decision engine: a pure function from (agent, key, request, grants) to a Decision.

It starts from deny: every early return only names the reason. Checks on the key and the agent
(revoked, expired, used up, suspended, wrong source address, upstream outside the key's scope)
are always enforced. Checks against grants honour the agent's mode: in ``report`` mode a request
that grants do not allow goes through, and the decision says what would have been denied.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from gatepass.globs import Glob, parse_model_glob, parse_path_glob
from gatepass.model import Agent, AgentStatus, AnyKey, Grant, KeyState, PolicyMode

__all__ = ["Decision", "Reason", "Request", "Result", "check_key", "decide"]


class Result(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Reason(enum.StrEnum):
    """Machine-readable reason codes; the gateway sends them as ``x-gatepass-denied``."""

    ALLOWED = "allowed"
    KEY_MALFORMED = "key_malformed"
    KEY_UNKNOWN = "key_unknown"
    KEY_REVOKED = "key_revoked"
    KEY_EXPIRED = "key_expired"
    KEY_USED_UP = "key_used_up"
    AGENT_SUSPENDED = "agent_suspended"
    SOURCE_NOT_ALLOWED = "source_not_allowed"
    UPSTREAM_NOT_IN_KEY = "upstream_not_in_key"
    NO_GRANT = "no_grant"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PATH_NOT_ALLOWED = "path_not_allowed"
    ROUTE_NOT_ALLOWED = "route_not_allowed"
    MODEL_NOT_ALLOWED = "model_not_allowed"


@dataclass(frozen=True, slots=True)
class Request:
    """What the engine needs to know of a request.

    ``known_route`` is False for a path the upstream's provider does not recognise: such a request
    needs a grant whose ``paths`` name it explicitly.
    """

    upstream: str
    method: str
    path: str
    now: datetime
    model: str | None = None
    source_ip: str | None = None
    known_route: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    """``report_only`` is True when the result is ALLOW only because the agent is in report mode;
    ``reason`` then names what enforcement would have denied."""

    result: Result
    reason: Reason
    sentence: str
    grant_id: str | None = None
    report_only: bool = False

    @property
    def allowed(self) -> bool:
        return self.result is Result.ALLOW


@lru_cache(maxsize=4096)
def _model_glob(text: str) -> Glob:
    return parse_model_glob(text)


@lru_cache(maxsize=4096)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


@lru_cache(maxsize=4096)
def _path_glob(text: str) -> Glob:
    return parse_path_glob(text)


def _in_cidrs(source_ip: str | None, cidrs: Sequence[str]) -> bool:
    if source_ip is None:
        return False
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in _network(cidr) for cidr in cidrs)


# Order of the grant checks: the deny reason reported is that of the grant that came closest.
_GRANT_CHECKS = (Reason.METHOD_NOT_ALLOWED, Reason.ROUTE_NOT_ALLOWED, Reason.PATH_NOT_ALLOWED, Reason.MODEL_NOT_ALLOWED)


def _grant_failure(grant: Grant, request: Request) -> Reason | None:
    if grant.methods and request.method.upper() not in grant.methods:
        return Reason.METHOD_NOT_ALLOWED
    if not request.known_route and not grant.paths:
        return Reason.ROUTE_NOT_ALLOWED
    if grant.paths and not any(_path_glob(p).matches(request.path) for p in grant.paths):
        return Reason.PATH_NOT_ALLOWED
    if (
        grant.models
        and request.model is not None
        and not any(_model_glob(m).matches(request.model) for m in grant.models)
    ):
        return Reason.MODEL_NOT_ALLOWED
    return None


@lru_cache(maxsize=4096)
def _allowed_by(grant_id: str) -> Decision:
    return Decision(Result.ALLOW, Reason.ALLOWED, f"allowed by grant {grant_id}", grant_id)


def _deny(reason: Reason, sentence: str) -> Decision:
    return Decision(Result.DENY, reason, sentence)


def check_key(agent: Agent, key: AnyKey, now: datetime, source_ip: str | None) -> Decision | None:
    """The checks on the key and its agent that hold everywhere (LLM routes and the egress proxy), in
    every mode: a denial, or None when they pass."""
    state = key.state(now)
    if state is KeyState.REVOKED:
        return _deny(Reason.KEY_REVOKED, f"key {key.id} was revoked; ask the agent's owner for a new key")
    if state is KeyState.EXPIRED:
        return _deny(
            Reason.KEY_EXPIRED,
            f"key {key.id} expired at {key.expires_at:%Y-%m-%d %H:%M:%S} UTC; issue a new one with gatepass key issue",
        )
    if state is KeyState.USED_UP:
        return _deny(Reason.KEY_USED_UP, f"key {key.id} has no uses left; issue a new one with gatepass key issue")
    if agent.status is not AgentStatus.ACTIVE:
        return _deny(
            Reason.AGENT_SUSPENDED,
            f"agent {agent.name} is suspended; its owner can resume it with gatepass agent resume {agent.name}",
        )
    if key.cidrs and not _in_cidrs(source_ip, key.cidrs):
        return _deny(Reason.SOURCE_NOT_ALLOWED, f"key {key.id} may not be used from {source_ip or 'here'}")
    return None


def decide(agent: Agent, key: AnyKey, request: Request, grants: Sequence[Grant]) -> Decision:
    """Decide one request. ``grants`` are the agent's; the function reads nothing else."""
    denied = check_key(agent, key, request.now, request.source_ip)
    if denied is not None:
        return denied
    if key.upstreams and request.upstream not in key.upstreams:
        return _deny(Reason.UPSTREAM_NOT_IN_KEY, f"key {key.id} is not scoped to upstream {request.upstream}")

    candidates = [g for g in grants if g.upstream == request.upstream]
    failure: Reason = Reason.NO_GRANT
    for grant in candidates:
        reason = _grant_failure(grant, request)
        if reason is None:
            return _allowed_by(grant.id)
        if failure is Reason.NO_GRANT or _GRANT_CHECKS.index(reason) > _GRANT_CHECKS.index(failure):
            failure = reason
    sentence = _grant_sentence(agent, request, failure)
    if agent.mode is PolicyMode.REPORT:
        return Decision(Result.ALLOW, failure, f"report-only: would deny: {sentence}", report_only=True)
    return _deny(failure, sentence)


def _grant_sentence(agent: Agent, request: Request, reason: Reason) -> str:
    who = f"agent {agent.name}"
    where = f"upstream {request.upstream}"
    match reason:
        case Reason.NO_GRANT:
            return f"{who} has no grant for {where}; allow it with gatepass allow {agent.name} {request.upstream}"
        case Reason.METHOD_NOT_ALLOWED:
            return f"{who} may not send {request.method.upper()} requests to {where}"
        case Reason.ROUTE_NOT_ALLOWED:
            return f"{request.path} is not a known route of {where}; a grant must name it with --paths"
        case Reason.PATH_NOT_ALLOWED:
            return f"{who} may not use {request.path} on {where}"
        case _:
            return f"{who} may not use model {request.model} on {where}"
