"""The store interface: everything gatepass keeps that is not the audit log.

Callers work inside a transaction (``with store.transaction(write=True) as tx: ...``); everything
done through one transaction commits together or not at all. Implementations: :mod:`.sql`
(SQLite in the home by default; PostgreSQL and MariaDB through the same SQLAlchemy Core code).
Implementations translate their driver's errors into :class:`gatepass.errors.StoreError`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from gatepass.alerts.thresholds import Threshold
from gatepass.model import Agent, Canary, EgressRule, Grant, KeyRecord, LiveKey, Upstream
from gatepass.units import Budget, Period, period_start

__all__ = ["Change", "SealedSecret", "SpendRow", "Store", "Transaction"]


@dataclass(frozen=True, slots=True)
class SpendRow:
    """Settled spend of one budget line: ``scope`` is "agent" or "key", ``owner_id`` its id."""

    scope: str
    owner_id: str
    period: Period
    period_start: datetime
    micros: int


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed: ``kind`` of object changed ("agent", "key", "grants", "upstream",
    "secret", "settings", "alerts", "egress", "canaries") and ``ref``, its id or name (the agent's id
    for "grants", "alerts", "egress" and "canaries")."""

    seq: int
    kind: str
    ref: str


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """A vault entry as stored: the value only as AES-GCM ciphertext bound to (id, name, upstream)."""

    id: str
    name: str
    upstream: str
    nonce: bytes
    ciphertext: bytes
    fingerprint: str
    created_at: datetime
    rotated_at: datetime | None

    def __repr__(self) -> str:
        return f"SealedSecret(id={self.id!r}, name={self.name!r}, upstream={self.upstream!r})"


class Transaction(abc.ABC):
    """Operations on the store; all of one transaction commit together."""

    # -- meta: instance identity, sealed server secrets, policy settings --------------------------
    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    # -- upstreams ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_upstream(self, upstream: Upstream) -> None:
        """Insert, or replace the upstream of the same name."""

    @abc.abstractmethod
    def get_upstream(self, name: str) -> Upstream | None: ...

    @abc.abstractmethod
    def list_upstreams(self) -> list[Upstream]: ...

    @abc.abstractmethod
    def delete_upstream(self, name: str) -> bool: ...

    # -- vault -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_secret(self, secret: SealedSecret) -> None:
        """Insert, or replace the secret of the same id."""

    @abc.abstractmethod
    def get_secret(self, name: str) -> SealedSecret | None: ...

    @abc.abstractmethod
    def list_secrets(self) -> list[SealedSecret]: ...

    @abc.abstractmethod
    def delete_secret(self, name: str) -> bool: ...

    # -- agents ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def put_agent(self, agent: Agent) -> None:
        """Insert, or replace the agent of the same id (budgets included)."""

    @abc.abstractmethod
    def get_agent(self, name: str) -> Agent | None: ...

    @abc.abstractmethod
    def get_agent_by_id(self, agent_id: str) -> Agent | None: ...

    @abc.abstractmethod
    def list_agents(self) -> list[Agent]: ...

    @abc.abstractmethod
    def delete_agent(self, agent_id: str) -> bool:
        """Delete the agent with its grants, keys and budgets."""

    # -- grants ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_grant(self, grant: Grant) -> None: ...

    @abc.abstractmethod
    def list_grants(self, agent_id: str | None = None) -> list[Grant]: ...

    @abc.abstractmethod
    def delete_grant(self, grant_id: str) -> bool: ...

    # -- keys --------------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_key(self, key: KeyRecord, digest: str) -> None: ...

    @abc.abstractmethod
    def get_key(self, key_id: str) -> KeyRecord | None: ...

    @abc.abstractmethod
    def find_key(self, digest: str) -> KeyRecord | None:
        """The key whose HMAC digest is ``digest`` (the lookup for authentication)."""

    @abc.abstractmethod
    def list_keys(self, agent_id: str | None = None) -> list[KeyRecord]: ...

    @abc.abstractmethod
    def iter_keys_with_digests(self, batch: int = 5000) -> Iterator[tuple[KeyRecord, str]]:
        """Every key with its HMAC digest, streamed (for the gateway's in-memory key table)."""

    def iter_live_keys(self, ended_after: datetime | None = None) -> Iterator[tuple[LiveKey, bytes]]:
        """Every key as the gateway holds it, with its digest as bytes, streamed; with
        ``ended_after``, only the keys that had not ended by then (see :meth:`LiveKey.ended`). A store
        may read only the columns a :class:`LiveKey` has (the gateway's start-up with 100,000s of keys)."""
        for record, digest in self.iter_keys_with_digests():
            key = LiveKey.of(record)
            if ended_after is None or key.ended() > ended_after:
                yield key, bytes.fromhex(digest)

    @abc.abstractmethod
    def key_digests(self, key_ids: Sequence[str] | None = None) -> dict[str, str]:
        """key id -> HMAC digest, for the gateway's in-memory key table (all keys when None)."""

    @abc.abstractmethod
    def revoke_keys(self, key_ids: Sequence[str], at: datetime, reason: str) -> list[str]:
        """Revoke those of ``key_ids`` not yet revoked; returns the ids it revoked."""

    @abc.abstractmethod
    def touch_key(self, key_id: str, at: datetime, source_ip: str | None) -> None:
        """Record when and from where a key was last used (no use is taken; not a policy change)."""

    def touch_keys(self, uses: Sequence[tuple[str, datetime, str | None]]) -> None:
        """:meth:`touch_key` for each (key id, at, source ip); a store may do them in one statement."""
        for key_id, at, source_ip in uses:
            self.touch_key(key_id, at, source_ip)

    @abc.abstractmethod
    def consume_key_use(self, key_id: str, at: datetime, source_ip: str | None) -> bool:
        """Record a use; for a key with a use limit, take one use atomically.

        Returns False when no use was left (another request took the last one)."""

    # -- budgets and spend -------------------------------------------------------------------------
    @abc.abstractmethod
    def set_key_budgets(self, key_id: str, budgets: Sequence[Budget]) -> None: ...

    @abc.abstractmethod
    def add_spend(self, rows: Iterable[SpendRow]) -> None:
        """Add each row's micros to its line (creating the line if new). Each line at most once."""

    @abc.abstractmethod
    def get_spend(self, since: datetime | None = None) -> list[SpendRow]:
        """Spend lines whose period started at or after ``since``, and every total line (all lines
        when None)."""

    def current_spend(self, now: datetime) -> Iterator[SpendRow]:
        """What each agent and key has spent in each period that contains ``now``: a row per owner
        and period, streamed. The store keeps a row per day and one for the total (see
        :mod:`gatepass.dataplane.spend`); a week's and a month's spend are the sums of their days.
        Week and month rows, written by earlier versions, hold nothing that their days' rows do
        not, so they count in nothing. A store may add up in the database."""
        starts = {period: period_start(period, now) for period in (Period.DAY, Period.WEEK, Period.MONTH)}
        sums: dict[tuple[str, str, Period, datetime], int] = {}
        for row in self.get_spend(min(starts.values())):
            lines: list[tuple[str, str, Period, datetime]]
            if row.period is Period.TOTAL:
                lines = [(row.scope, row.owner_id, Period.TOTAL, row.period_start)]
            elif row.period is Period.DAY:
                lines = [
                    (row.scope, row.owner_id, p, start) for p, start in starts.items() if row.period_start >= start
                ]
            else:
                continue
            for line in lines:
                sums[line] = sums.get(line, 0) + row.micros
        for (scope, owner_id, period, start), micros in sums.items():
            yield SpendRow(scope, owner_id, period, start, micros)

    # -- spend thresholds (alerts) -------------------------------------------------------------------
    @abc.abstractmethod
    def set_alerts(self, agent_id: str, thresholds: Sequence[Threshold]) -> None:
        """Replace the agent's thresholds (ids are kept by the caller, so unchanged ones keep theirs)."""

    @abc.abstractmethod
    def list_alerts(self, agent_id: str | None = None) -> dict[str, tuple[Threshold, ...]]:
        """agent id -> its thresholds, mildest first."""

    @abc.abstractmethod
    def record_firing(self, threshold_id: str, period_start: datetime, at: datetime) -> bool:
        """Record that a threshold fired in a period; False if it already had (fire once per period)."""

    @abc.abstractmethod
    def fired_since(self, since: datetime) -> set[tuple[str, datetime]]:
        """(threshold id, period start) of the firings of periods that started at or after ``since``."""

    # -- egress allowlist ----------------------------------------------------------------------------
    @abc.abstractmethod
    def add_egress_rule(self, rule: EgressRule) -> None: ...

    @abc.abstractmethod
    def list_egress_rules(self, agent_id: str | None = None) -> list[EgressRule]: ...

    @abc.abstractmethod
    def delete_egress_rule(self, rule_id: str) -> bool: ...

    # -- canaries ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def add_canary(self, canary: Canary) -> None: ...

    @abc.abstractmethod
    def list_canaries(self, agent_id: str | None = None) -> list[Canary]: ...

    @abc.abstractmethod
    def delete_canary(self, canary_id: str) -> bool: ...

    # -- change feed ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def changes_since(self, seq: int, limit: int = 10_000) -> list[Change]:
        """Changes after ``seq``, oldest first. Writes of this interface append to the feed themselves."""

    @abc.abstractmethod
    def last_change_seq(self) -> int: ...


class Store(abc.ABC):
    """A handle on one store; thread-safe, cheap to open transactions on."""

    @abc.abstractmethod
    def transaction(self, *, write: bool = False) -> AbstractContextManager[Transaction]:
        """A transaction; ``write=True`` takes the write lock at once (no upgrade deadlocks)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @property
    @abc.abstractmethod
    def display_url(self) -> str:
        """Where the store is, with any password masked."""
