"""Gatepass keys: issued to an agent, shown once, stored only as an HMAC, always with an expiry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from gatepass.control.agents import check_limits, get_agent
from gatepass.control.app import Gatepass, Session
from gatepass.control.upstreams import get_upstream
from gatepass.errors import AuthenticationError, InvalidInputError, NotFoundError
from gatepass.keyformat import generate_key, is_well_formed, new_id
from gatepass.model import NO_LIMITS, Agent, AgentStatus, KeyDefaults, KeyRecord, RateLimits
from gatepass.names import parse_cidr
from gatepass.policy.decision import Decision, Reason, Request, Result, decide
from gatepass.sensitive import Secret
from gatepass.store import Transaction
from gatepass.units import Budget, format_duration

__all__ = ["authenticate", "get_key_defaults", "issue_key", "revoke_key", "set_key_defaults", "use_key"]

_DEFAULT_TTL_META = "keys.default_ttl_seconds"
_MAX_TTL_META = "keys.max_ttl_seconds"


def get_key_defaults(tx: Transaction) -> KeyDefaults:
    base = KeyDefaults()
    default = tx.get_meta(_DEFAULT_TTL_META)
    maximum = tx.get_meta(_MAX_TTL_META)
    return KeyDefaults(
        default_ttl=timedelta(seconds=int(default)) if default else base.default_ttl,
        max_ttl=timedelta(seconds=int(maximum)) if maximum else base.max_ttl,
    )


def set_key_defaults(
    session: Session, *, default_ttl: timedelta | None = None, max_ttl: timedelta | None = None
) -> KeyDefaults:
    current = get_key_defaults(session.tx)
    wanted = KeyDefaults(default_ttl=default_ttl or current.default_ttl, max_ttl=max_ttl or current.max_ttl)
    if wanted.default_ttl > wanted.max_ttl:
        raise InvalidInputError(
            f"the default TTL {format_duration(wanted.default_ttl)} is longer than the maximum "
            f"{format_duration(wanted.max_ttl)}: lower --ttl or raise --max-ttl"
        )
    if wanted != current:
        session.tx.set_meta(_DEFAULT_TTL_META, str(int(wanted.default_ttl.total_seconds())))
        session.tx.set_meta(_MAX_TTL_META, str(int(wanted.max_ttl.total_seconds())))
        session.record(
            "key.defaults",
            "keys",
            {"default_ttl": format_duration(wanted.default_ttl), "max_ttl": format_duration(wanted.max_ttl)},
        )
    return wanted


def issue_key(
    session: Session,
    agent_name: str,
    *,
    ttl: timedelta | None = None,
    uses: int | None = None,
    cidrs: Sequence[str] = (),
    budgets: Sequence[Budget] = (),
    upstreams: Sequence[str] = (),
    limits: RateLimits = NO_LIMITS,
) -> tuple[Secret, KeyRecord]:
    """A new key for an active agent. The returned Secret is the only copy: it is never stored."""
    tx = session.tx
    agent = get_agent(tx, agent_name)
    if agent.status is not AgentStatus.ACTIVE:
        raise InvalidInputError(
            f"agent {agent.name} is {agent.status.value}: resume it first with gatepass agent resume {agent.name}"
        )
    defaults = get_key_defaults(tx)
    lifetime = ttl or defaults.default_ttl
    if lifetime > defaults.max_ttl:
        raise InvalidInputError(
            f"a TTL of {format_duration(lifetime)} is longer than the maximum "
            f"{format_duration(defaults.max_ttl)}: use a shorter --ttl, or raise the maximum "
            "with gatepass key defaults --max-ttl"
        )
    if uses is not None and uses < 1:
        raise InvalidInputError(f"invalid --uses {uses}: give a whole number of at least 1 (1 = single use)")
    networks = tuple(dict.fromkeys(str(parse_cidr(c)) for c in cidrs))
    granted = {g.upstream for g in tx.list_grants(agent.id)}
    for name in upstreams:
        get_upstream(tx, name)
        if name not in granted:
            raise InvalidInputError(
                f"agent {agent.name} has no grant for upstream {name!r}: allow it first with "
                f"gatepass allow {agent.name} {name}"
            )
    periods = [b.period for b in budgets]
    if len(periods) != len(set(periods)):
        raise InvalidInputError("two key budgets for the same period: keep one per period")
    key = generate_key()
    record = KeyRecord(
        id=new_id("key_"),
        agent_id=agent.id,
        created_at=session.now,
        expires_at=session.now + lifetime,
        max_uses=uses,
        uses_left=uses,
        cidrs=networks,
        upstreams=tuple(dict.fromkeys(upstreams)),
        budgets=tuple(budgets),
        limits=check_limits(limits),
    )
    tx.add_key(record, session.app.vault.key_digest(key))
    session.record(
        "key.issue",
        record.id,
        {
            "agent": agent.name,
            "expires_at": record.expires_at.isoformat(),
            "uses": uses,
            "cidrs": list(networks),
            "upstreams": list(record.upstreams),
            "budgets": [str(b) for b in budgets],
            "limits": dict(record.limits.items()),
        },
    )
    return key, record


def revoke_key(session: Session, key_id: str, *, reason: str = "revoked by its owner") -> tuple[KeyRecord, bool]:
    """Revoke one key; ``False`` if it was already revoked (nothing changes then)."""
    record = session.tx.get_key(key_id)
    if record is None:
        raise NotFoundError(f"no key with id {key_id!r}: see gatepass key list")
    done = session.tx.revoke_keys([key_id], session.now, reason)
    if done:
        agent = session.tx.get_agent_by_id(record.agent_id)
        session.record("key.revoke", key_id, {"agent": agent.name if agent else None, "reason": reason})
    return record, bool(done)


def authenticate(tx: Transaction, app: Gatepass, key: Secret) -> tuple[Agent, KeyRecord]:
    """Map a presented key to its agent and record. Says nothing about whether it may be used."""
    if not is_well_formed(key.reveal()):
        raise AuthenticationError(
            "the key is not a gatepass key (bad format or checksum): check it was copied whole", reason="key_malformed"
        )
    record = tx.find_key(app.vault.key_digest(key))
    agent = None if record is None else tx.get_agent_by_id(record.agent_id)
    if record is None or agent is None:
        raise AuthenticationError(
            "the key is not known to this gatepass: issue one with gatepass key issue", reason="key_unknown"
        )
    return agent, record


def use_key(app: Gatepass, key: Secret, request: Request) -> Decision:
    """Authenticate, decide and (when allowed) take one use of the key, atomically; audited."""
    with app.session() as session:
        tx = session.tx
        try:
            agent, record = authenticate(tx, app, key)
        except AuthenticationError as exc:
            session.record("key.use", "unknown", {"upstream": request.upstream}, decision="deny", reason=exc.reason)
            return Decision(Result.DENY, Reason(exc.reason), exc.message)
        decision = decide(agent, record, request, tx.list_grants(agent.id))
        if decision.allowed and not tx.consume_key_use(record.id, request.now, request.source_ip):
            decision = Decision(Result.DENY, Reason.KEY_USED_UP, f"key {record.id} has no uses left")
        session.record(
            "key.use",
            record.id,
            {
                "agent": agent.name,
                "upstream": request.upstream,
                "method": request.method,
                "path": request.path,
                "model": request.model,
                "grant": decision.grant_id,
                "report_only": decision.report_only,
            },
            decision=decision.result.value,
            reason=decision.reason.value,
        )
        return decision
