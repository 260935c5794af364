"""Persisting spend: the counters live in memory; the store keeps their totals, the audit log the rest.

Settled costs are added to the store's spend lines in batches (every second and at shutdown), in
one transaction with a watermark: the audit sequence number up to which the store's totals are
complete. At start-up the gateway loads the current periods' totals and replays the audit log's
request records after the watermark, so a crash loses no spend. The watermark only advances when no
audit write is outstanding, so a crash can at worst count a request twice (over, never under).

The store keeps two lines per agent and per key: each UTC day's spend, and the total. A week's or
a month's spend is the sum of its days, made when it is read (at start-up, and by ``gatepass spend``
without a gateway). Writing a line per period took twice the rows, in a flush that competes with
the requests for the interpreter: with many keys in use it wrote some 30,000 rows a second.

Keys with a use limit take each use durably in the store before the request is forwarded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from gatepass.audit import AuditRecord
from gatepass.audit.reader import records_after
from gatepass.metering.counters import (
    PERIODS,
    Counters,
    Line,
    day_of,
    period_starts,
)
from gatepass.store import Store, Transaction
from gatepass.store.interface import SpendRow
from gatepass.units import Period

__all__ = ["SpendLedger"]

log = logging.getLogger("gatepass.spend")
_WATERMARK = "spend.audit_seq"
_DAY, _TOTAL = PERIODS.index(Period.DAY), PERIODS.index(Period.TOTAL)


Pending = dict[int, tuple[dict[str, int], dict[str, int]]]


class _Batch(NamedTuple):
    pending: Pending
    touched: dict[str, tuple[datetime, str | None]]
    seq: int


class SpendLedger:
    """Write-behind of settled spend and key use stamps to the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # UTC day -> (agent id -> micro-USD, key id -> micro-USD): one entry per agent and key in use,
        # expanded to the lines of each period only when written.
        self._pending: Pending = {}
        self._touched: dict[str, tuple[datetime, str | None]] = {}
        self._seq = 0
        self._flushed_seq = 0
        self._writing: asyncio.Future[None] | None = None
        #: Audit writes in flight; while any is, the watermark does not advance.
        self.auditing = 0

    def charge(self, agent_id: str, key_id: str, day: int, micros: int, seq: int) -> None:
        """Add a settled request's cost to its agent's and its key's lines of every period of ``day``."""
        owners = self._pending.get(day)
        if owners is None:
            owners = self._pending[day] = ({}, {})
        agents, keys = owners
        agents[agent_id] = agents.get(agent_id, 0) + micros
        keys[key_id] = keys.get(key_id, 0) + micros
        self._seq = max(self._seq, seq)

    def touch(self, key_id: str, at: datetime, source_ip: str | None) -> None:
        self._touched[key_id] = (at, source_ip)

    async def take_use(self, key_id: str, at: datetime, source_ip: str | None) -> bool:
        def take() -> bool:
            with self._store.transaction(write=True) as tx:
                return tx.consume_key_use(key_id, at, source_ip)

        return await asyncio.to_thread(take)

    def flush(self) -> None:
        """Write what is pending, blocking (at shutdown; :meth:`run` writes in a thread)."""
        batch = self._take()
        if batch is not None:
            try:
                self._write(batch)
            except Exception:
                self._keep(batch)
                raise

    async def run(self, interval: float = 1.0) -> None:
        """Write what is pending every ``interval`` seconds, until cancelled (then call :meth:`close`)."""
        while True:
            await asyncio.sleep(interval)
            # Taken and given back on the event loop, where requests add to it: only the writing
            # runs in a thread, on what no request touches any more.
            batch = self._take()
            if batch is not None:
                self._writing = asyncio.ensure_future(self._write_in_thread(batch))
                await asyncio.shield(self._writing)  # a cancelled run leaves the write to finish

    async def close(self) -> None:
        """At shutdown, once :meth:`run` is cancelled: let a write in progress finish (two at once
        would wait on each other's lock in the store), then write the rest."""
        if self._writing is not None:
            await self._writing
        batch = self._take()
        if batch is not None:
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception:
                self._keep(batch)
                raise

    async def _write_in_thread(self, batch: _Batch) -> None:
        try:
            await asyncio.to_thread(self._write, batch)
        except Exception:
            self._keep(batch)
            log.exception("could not write spend to the store; will retry")

    def _take(self) -> _Batch | None:
        seq = self._seq if self.auditing == 0 else self._flushed_seq
        if not self._pending and not self._touched and seq == self._flushed_seq:
            return None
        batch = _Batch(self._pending, self._touched, seq)
        self._pending, self._touched = {}, {}
        return batch

    def _write(self, batch: _Batch) -> None:
        with self._store.transaction(write=True) as tx:
            tx.add_spend(_rows(batch.pending))
            tx.touch_keys([(key_id, at, ip) for key_id, (at, ip) in batch.touched.items()])
            tx.set_meta(_WATERMARK, str(batch.seq))
        self._flushed_seq = max(self._flushed_seq, batch.seq)

    def _keep(self, batch: _Batch) -> None:
        """Put a batch that could not be written back: the next flush tries again. (The audit log
        still has every request, and the watermark did not move.)"""
        for day, (agents, keys) in batch.pending.items():
            now_agents, now_keys = self._pending.setdefault(day, ({}, {}))
            for owner_id, micros in agents.items():
                now_agents[owner_id] = now_agents.get(owner_id, 0) + micros
            for owner_id, micros in keys.items():
                now_keys[owner_id] = now_keys.get(owner_id, 0) + micros
        self._touched = {**batch.touched, **self._touched}

    @staticmethod
    def load(
        tx: Transaction,
        counters: Counters,
        audit_dir: Path,
        now: datetime,
        wanted: Callable[[str, str], bool] | None = None,
    ) -> int:
        """Fill ``counters`` with the store's totals of the periods that contain ``now``, then replay
        the audit records after the watermark. Returns how many records were replayed.

        With ``wanted`` (scope, owner id), only the agents and keys it names are loaded: the store
        keeps a total for every key that ever spent, and the gateway needs those of the keys it
        holds, not one counter slot per key ever issued."""
        for row in tx.current_spend(now):
            if wanted is None or wanted(row.scope, row.owner_id):
                counters.add_spend(Line(row.scope, row.owner_id, row.period, row.period_start), row.micros, now)
        watermark = int(tx.get_meta(_WATERMARK) or 0)
        replayed = 0
        for record in records_after(audit_dir, watermark):
            lines = _lines_of(record)
            if lines:
                cost = _cost_of(record)
                for line in lines:
                    if wanted is None or wanted(line.scope, line.owner_id):
                        counters.add_spend(line, cost, now)
                replayed += 1
        return replayed


def _rows(pending: Pending) -> Iterator[SpendRow]:
    """The store's lines for what is pending, made as the store takes them. Days that share a week,
    a month or the total (a flush across midnight) add up in one row per line."""
    if len(pending) > 1:
        found: dict[tuple[str, str, Period, datetime], int] = {}
        for row in _rows_of_days(pending):
            line = (row.scope, row.owner_id, row.period, row.period_start)
            found[line] = found.get(line, 0) + row.micros
        for (scope, owner_id, period, start), micros in found.items():
            yield SpendRow(scope, owner_id, period, start, micros)
    else:
        yield from _rows_of_days(pending)


def _rows_of_days(pending: Pending) -> Iterator[SpendRow]:
    """Each owner's day line and total line (see above: weeks and months are sums of days)."""
    for day, owners in pending.items():
        starts = period_starts(day)
        start, total = starts[_DAY], starts[_TOTAL]
        for scope, amounts in zip(("agent", "key"), owners, strict=True):
            for owner_id, micros in amounts.items():
                yield SpendRow(scope, owner_id, Period.DAY, start, micros)
                yield SpendRow(scope, owner_id, Period.TOTAL, total, micros)


def _cost_of(record: AuditRecord) -> int:
    cost = record.meta.get("cost_micros")
    return cost if isinstance(cost, int) else 0


def _lines_of(record: AuditRecord) -> list[Line]:
    meta = record.meta
    if record.action != "request" or not _cost_of(record):
        return []
    t, agent_id, key_id = meta.get("t"), meta.get("agent_id"), meta.get("key")
    if not isinstance(t, int) or not isinstance(agent_id, str) or not isinstance(key_id, str):
        return []
    starts = period_starts(day_of(datetime.fromtimestamp(t, UTC)))
    return [
        Line(scope, owner_id, period, start)
        for period, start in zip(PERIODS, starts, strict=True)
        for scope, owner_id in (("agent", agent_id), ("key", key_id))
    ]
