"""What the gateway holds in memory: keys, agents, grants, upstreams with their credentials.

The per-request path reads only this (no table it can cache). It is loaded from the store at
start-up and kept current by the change feed: every write to the store appends (kind, ref) to it,
and :meth:`RuntimeState.apply` reloads just what changed. A revocation is therefore visible to the
next request as soon as the gateway has read the feed (at once when the CLI notifies the gateway,
within the poll interval otherwise).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn, TypeVar

from gatepass.dataplane.http.client import Origin
from gatepass.model import Agent, AuthStyle, Canary, EgressRule, Grant, LiveKey, Upstream
from gatepass.providers import Provider, get_provider
from gatepass.sensitive import Secret
from gatepass.store import Transaction
from gatepass.store.interface import Change
from gatepass.vault import Vault

__all__ = ["Credential", "RuntimeState", "UpstreamEntry", "credential_for"]

log = logging.getLogger(__name__)


class Credential:
    """The one header that carries an upstream secret. Prints as a mask; cannot be pickled."""

    __slots__ = ("_value", "name")

    def __init__(self, name: bytes, value: bytes) -> None:
        self.name = name
        self._value = value

    def header(self) -> tuple[bytes, bytes]:
        return self.name, self._value

    def __repr__(self) -> str:
        return f"Credential({self.name.decode()!r}, '[secure]')"

    def __reduce__(self) -> NoReturn:
        raise TypeError("Credential cannot be pickled")


def credential_for(auth: AuthStyle, secret: Secret) -> Credential | None:
    value = secret.reveal().encode("utf-8")
    match auth.kind:
        case "bearer":
            return Credential(b"authorization", b"Bearer " + value)
        case "basic":
            return Credential(b"authorization", b"Basic " + base64.b64encode(value))
        case "header":
            return Credential((auth.header or "").lower().encode("ascii"), value)
        case _:
            return None


@dataclass(slots=True)
class UpstreamEntry:
    """An upstream ready for traffic. ``problem`` says why it cannot carry a credential, if so."""

    upstream: Upstream
    provider: Provider
    origin: Origin
    base_path: bytes
    credential: Credential | None
    problem: str | None


_Owned = TypeVar("_Owned", EgressRule, Canary)


def _ignore(scope: str, ids: list[str]) -> None:
    pass


def _by_agent(items: Iterable[_Owned]) -> dict[str, tuple[_Owned, ...]]:
    grouped: dict[str, list[_Owned]] = {}
    for item in items:
        grouped.setdefault(item.agent_id, []).append(item)
    return {agent_id: tuple(found) for agent_id, found in grouped.items()}


class RuntimeState:
    """The gateway's in-memory view of the store."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        # HMAC digest -> record. No index by key id: a key's digest never changes, so a reload finds
        # it in the store (only a purged key costs a scan), which saves 40 bytes per key.
        self.keys: dict[bytes, LiveKey] = {}
        self.agents: dict[str, Agent] = {}  # id -> agent
        self.agent_ids: dict[str, str] = {}  # name -> id
        self.grants: dict[str, tuple[Grant, ...]] = {}  # agent id -> grants
        self.upstreams: dict[str, UpstreamEntry] = {}
        self.egress: dict[str, tuple[EgressRule, ...]] = {}  # agent id -> hosts it may reach through the proxy
        self.canaries: dict[str, tuple[Canary, ...]] = {}  # agent id -> its decoys (values sealed)
        self.secret_values: dict[str, Secret] = {}  # every vault secret by name, for the leak guard
        self.leak_version = 0  # goes up whenever what the leak guard looks for changes
        self.seq = 0
        # Told ("agent" or "key", ids) of the agents and keys this view drops, so that what is held
        # for them elsewhere (the budget counters) goes too.
        self.on_forget: Callable[[str, list[str]], None] = _ignore

    # -- loading ----------------------------------------------------------------------------------
    def load(self, tx: Transaction, ended_after: datetime | None = None) -> None:
        """Everything the gateway needs; with ``ended_after``, no key that had ended by then
        (revoked or expired: see :meth:`forget_ended`)."""
        self.seq = tx.last_change_seq()
        self.agents = {a.id: a for a in tx.list_agents()}
        self.agent_ids = {a.name: a.id for a in self.agents.values()}
        grants: dict[str, list[Grant]] = {}
        for grant in tx.list_grants():
            grants.setdefault(grant.agent_id, []).append(grant)
        self.grants = {agent_id: tuple(found) for agent_id, found in grants.items()}
        self.egress = _by_agent(tx.list_egress_rules())
        self.canaries = _by_agent(tx.list_canaries())
        self.keys = {digest: key for key, digest in tx.iter_live_keys(ended_after)}
        self.upstreams = {}
        for upstream in tx.list_upstreams():
            self._put_upstream(tx, upstream)
        self.secret_values = {sealed.name: self._vault.open_secret(sealed) for sealed in tx.list_secrets()}
        self.leak_version += 1

    def apply(self, tx: Transaction, changes: Iterable[Change]) -> int:
        """Reload what the changes name; returns how many were applied."""
        count = 0
        # Keys no longer in the store, and agents deleted (with their keys): their keys are dropped
        # in one pass over all keys at the end of the batch, however many were deleted.
        gone_keys: set[str] = set()
        gone_agents: set[str] = set()
        for change in changes:
            match change.kind:
                case "agent":
                    self._reload_agent(tx, change.ref, gone_agents)
                case "key":
                    self._reload_key(tx, change.ref, gone_keys)
                case "grants":
                    self.grants[change.ref] = tuple(tx.list_grants(change.ref))
                case "upstream":
                    self._reload_upstream(tx, change.ref)
                case "egress":
                    self.egress[change.ref] = tuple(tx.list_egress_rules(change.ref))
                case "canaries":
                    self.canaries[change.ref] = tuple(tx.list_canaries(change.ref))
                    self.leak_version += 1
                case "secret":
                    self._reload_secret_value(tx, change.ref)
                    for upstream in tx.list_upstreams():
                        if upstream.secret_name == change.ref:
                            self._put_upstream(tx, upstream)
                case _:
                    pass  # settings and alerts are read where they are used
            self.seq = max(self.seq, change.seq)
            count += 1
        if gone_keys or gone_agents:
            dropped = [d for d, r in self.keys.items() if r.id in gone_keys or r.agent_id in gone_agents]
            self.on_forget("key", [self.keys.pop(digest).id for digest in dropped])
        if gone_agents:
            self.on_forget("agent", list(gone_agents))
        return count

    def _reload_agent(self, tx: Transaction, agent_id: str, gone: set[str]) -> None:
        agent = tx.get_agent_by_id(agent_id)
        old = self.agents.pop(agent_id, None)
        if old is not None:
            self.agent_ids.pop(old.name, None)
        if agent is None:
            self.grants.pop(agent_id, None)
            self.egress.pop(agent_id, None)
            if self.canaries.pop(agent_id, None):
                self.leak_version += 1
            gone.add(agent_id)  # its keys go at the end of the batch (no request runs meanwhile)
            return
        self.agents[agent_id] = agent
        self.agent_ids[agent.name] = agent_id

    def _reload_key(self, tx: Transaction, key_id: str, gone: set[str]) -> None:
        record = tx.get_key(key_id)
        found = tx.key_digests([key_id]).get(key_id)
        digest = bytes.fromhex(found) if found is not None else None
        if digest is None:
            gone.add(key_id)  # deleted with its agent: found by id at the end of the batch
        elif record is not None:
            self.keys[digest] = LiveKey.of(record)
        elif self.keys.pop(digest, None) is not None:
            self.on_forget("key", [key_id])

    def forget_ended(self, ended_by: datetime) -> list[str]:
        """Drop the keys that had ended (been revoked, or expired) by ``ended_by``; returns their ids.

        The gateway holds a key that can no longer be used for a while after it ended, so that its
        refusal says why (``key_revoked``, ``key_expired``); past that it answers as for a key it
        never knew. Otherwise every key ever issued would stay in memory: ``gatepass run`` issues
        one per run. The store keeps them all."""
        ended = [digest for digest, key in self.keys.items() if key.ended() <= ended_by]
        ids = [self.keys.pop(digest).id for digest in ended]
        if ids:
            self.on_forget("key", ids)
        return ids

    def replace_key(self, digest: bytes, record: LiveKey) -> None:
        """Swap in a newer copy of a key (the gateway's own use counting), unless it was dropped meanwhile."""
        if digest in self.keys:
            self.keys[digest] = record

    def _reload_secret_value(self, tx: Transaction, name: str) -> None:
        sealed = tx.get_secret(name)
        if sealed is None:
            self.secret_values.pop(name, None)
        else:
            self.secret_values[name] = self._vault.open_secret(sealed)
        self.leak_version += 1

    def _reload_upstream(self, tx: Transaction, name: str) -> None:
        upstream = tx.get_upstream(name)
        self.upstreams.pop(name, None)
        if upstream is not None:
            self._put_upstream(tx, upstream)

    def _put_upstream(self, tx: Transaction, upstream: Upstream) -> None:
        provider = get_provider(upstream.type.value)
        origin = Origin.parse(upstream.base_url)
        credential: Credential | None = None
        problem: str | None = None
        if upstream.auth.kind != "none":
            sealed = tx.get_secret(upstream.secret_name) if upstream.secret_name else None
            if upstream.secret_name is None:
                problem = (
                    f"upstream {upstream.name} has no secret: gatepass upstream update {upstream.name} --secret NAME"
                )
            elif sealed is None:
                problem = (
                    f"secret {upstream.secret_name} is not in the vault: gatepass secret add "
                    f"{upstream.secret_name} --upstream {upstream.name}"
                )
            elif sealed.upstream != upstream.name:
                # A credential leaves the vault only for its own upstream (invariant 1).
                problem = f"secret {sealed.name} belongs to upstream {sealed.upstream}, not {upstream.name}"
            else:
                credential = credential_for(upstream.auth, self._vault.open_secret(sealed))
        self.upstreams[upstream.name] = UpstreamEntry(upstream, provider, origin, origin.base_path, credential, problem)
