"""The domain records that the store keeps and every layer passes around.

All are frozen; timestamps are aware UTC datetimes; money is integer micro-dollars. None of them
holds a secret value: a vault entry is described by :class:`SecretInfo` (name, fingerprint, dates)
and a gatepass key by :class:`KeyRecord` (its HMAC never leaves the store layer), or in the gateway's
memory by the leaner :class:`LiveKey`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, TypeAlias

from gatepass.errors import InvalidInputError
from gatepass.units import Budget

__all__ = [
    "LEAK_ACTIONS",
    "NO_LIMITS",
    "Agent",
    "AgentStatus",
    "AnyKey",
    "AuthStyle",
    "Canary",
    "EgressRule",
    "Grant",
    "KeyDefaults",
    "KeyRecord",
    "KeyState",
    "LiveKey",
    "PolicyMode",
    "RateLimits",
    "SecretInfo",
    "Upstream",
    "UpstreamType",
]


class AgentStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class PolicyMode(enum.StrEnum):
    """``enforce`` denies what policy denies; ``report`` lets it through and records the would-be denial."""

    ENFORCE = "enforce"
    REPORT = "report"


class UpstreamType(enum.StrEnum):
    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    GITHUB = "github"
    HTTP = "http"


@dataclass(frozen=True, slots=True)
class AuthStyle:
    """How a credential is sent upstream: ``bearer``, ``basic`` (value is user:password),
    ``header:NAME`` (the value alone in header NAME), or ``none``."""

    kind: str
    header: str | None = None

    @classmethod
    def parse(cls, text: str) -> AuthStyle:
        kind, _, header = text.strip().partition(":")
        kind = kind.lower()
        if kind in ("bearer", "basic", "none") and not header:
            return cls(kind)
        if kind == "header" and header and all(c.isalnum() or c == "-" for c in header):
            return cls("header", header)
        raise InvalidInputError(
            f"invalid auth style {text!r}: use bearer, basic, none or header:NAME (e.g. header:X-Api-Key)"
        )

    def __str__(self) -> str:
        return f"header:{self.header}" if self.kind == "header" else self.kind


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where requests for ``/{name}/...`` go, and which vault secret they carry."""

    name: str
    type: UpstreamType
    base_url: str
    auth: AuthStyle
    secret_name: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A vault entry as it may be shown: never the value."""

    name: str
    upstream: str
    fingerprint: str
    created_at: datetime
    rotated_at: datetime | None


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests per minute, tokens per minute and concurrent requests; None means no limit."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None

    def items(self) -> list[tuple[str, int]]:
        return [(k, v) for k, v in (("rpm", self.rpm), ("tpm", self.tpm), ("concurrency", self.concurrency)) if v]

    def __str__(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.items()) or "none"


#: No rate limit of any kind (shared: RateLimits is immutable).
NO_LIMITS: Final = RateLimits()


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    name: str
    owner: str
    email: str
    description: str
    status: AgentStatus
    mode: PolicyMode
    created_at: datetime
    updated_at: datetime
    status_reason: str | None = None
    budgets: tuple[Budget, ...] = ()
    limits: RateLimits = NO_LIMITS


@dataclass(frozen=True, slots=True)
class Grant:
    """Permission for one agent to use one upstream, narrowed by models, methods and paths.

    An empty tuple means "no restriction on this axis"; ``methods`` may hold ``*``.
    """

    id: str
    agent_id: str
    upstream: str
    models: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    created_at: datetime | None = field(default=None, compare=False)
    #: What the leak guard does with a request under this grant that carries a secret or a
    #: credential: "block" (the default), "redact" (send it with the match replaced) or "report".
    leaks: str = "block"

    def scope_text(self) -> str:
        parts = [
            f"models={','.join(self.models)}" if self.models else "",
            f"methods={','.join(self.methods)}" if self.methods else "",
            f"paths={','.join(self.paths)}" if self.paths else "",
            f"leaks={self.leaks}" if self.leaks != "block" else "",
        ]
        return " ".join(p for p in parts if p) or "everything"


#: The leak guard's actions, per grant.
LEAK_ACTIONS: Final = ("block", "redact", "report")


class KeyState(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    USED_UP = "used_up"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A gatepass key as stored, without the key itself.

    ``uses_left`` is None for keys without a use limit. ``upstreams`` empty means every upstream the
    agent is granted; ``cidrs`` empty means any source address.
    """

    id: str
    agent_id: str
    created_at: datetime
    expires_at: datetime
    max_uses: int | None = None
    uses_left: int | None = None
    cidrs: tuple[str, ...] = ()
    upstreams: tuple[str, ...] = ()
    budgets: tuple[Budget, ...] = ()
    limits: RateLimits = NO_LIMITS
    last_used_at: datetime | None = None
    last_used_ip: str | None = None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None

    def state(self, now: datetime) -> KeyState:
        return _key_state(self.revoked_at, self.expires_at, self.uses_left, now)


@dataclass(frozen=True, slots=True)
class LiveKey:
    """A key as the gateway holds it in memory: what admission reads, and nothing more.

    The gateway holds every key (100,000s of them); leaving out what only listings show (creation
    time, last use, revocation reason, the original use limit) saves about 90 bytes a key.
    """

    id: str
    agent_id: str
    expires_at: datetime
    uses_left: int | None = None
    cidrs: tuple[str, ...] = ()
    upstreams: tuple[str, ...] = ()
    budgets: tuple[Budget, ...] = ()
    limits: RateLimits = NO_LIMITS
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, record: KeyRecord) -> LiveKey:
        return cls(
            record.id,
            record.agent_id,
            record.expires_at,
            record.uses_left,
            record.cidrs,
            record.upstreams,
            record.budgets,
            record.limits,
            record.revoked_at,
        )

    def state(self, now: datetime) -> KeyState:
        return _key_state(self.revoked_at, self.expires_at, self.uses_left, now)

    def ended(self) -> datetime:
        """When the key stopped, or will stop, being usable: its revocation, else its expiry (a key
        whose uses ran out has no moment of its own for that, so its expiry counts)."""
        return self.expires_at if self.revoked_at is None else min(self.revoked_at, self.expires_at)


#: What the key checks accept: a record from the store, or the gateway's copy.
AnyKey: TypeAlias = KeyRecord | LiveKey


def _key_state(revoked_at: datetime | None, expires_at: datetime, uses_left: int | None, now: datetime) -> KeyState:
    if revoked_at is not None:
        return KeyState.REVOKED
    if now >= expires_at:
        return KeyState.EXPIRED
    if uses_left is not None and uses_left <= 0:
        return KeyState.USED_UP
    return KeyState.ACTIVE


@dataclass(frozen=True, slots=True)
class KeyDefaults:
    """TTL given to a key issued without ``--ttl``, and the longest TTL any key may have."""

    default_ttl: timedelta = timedelta(hours=1)
    max_ttl: timedelta = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class EgressRule:
    """One host an agent may reach through the egress proxy.

    ``host`` is a lowercase DNS name (``api.example.com``), a wildcard over its subdomains
    (``*.example.com``, which does not match ``example.com`` itself) or an IP address; ``ports``
    empty means 80 and 443.
    """

    id: str
    agent_id: str
    host: str
    ports: tuple[int, ...] = ()
    created_at: datetime | None = field(default=None, compare=False)

    def text(self) -> str:
        return self.host + (":" + ",".join(str(p) for p in self.ports) if self.ports else "")


@dataclass(frozen=True, slots=True)
class Canary:
    """Decoy credentials planted in an agent's environment (and optionally a file in its folder).

    The values (environment name -> decoy) are sealed by the vault in ``sealed``; they are not real
    credentials, but an agent that could read them here could also avoid them. ``revoke`` says
    whether a canary seen in traffic revokes the agent's keys as well as blocking and alerting.
    """

    id: str
    agent_id: str
    kind: str
    sealed: str
    fingerprint: str
    file: str | None = None
    revoke: bool = True
    created_at: datetime | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"Canary(id={self.id!r}, agent_id={self.agent_id!r}, kind={self.kind!r})"
