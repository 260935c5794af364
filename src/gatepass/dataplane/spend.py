"""Persisting spend: the counters live in memory; the store keeps their totals, the audit log the rest.

Settled costs are added to the store's spend lines in batches (every second and at shutdown), in
one transaction with a watermark: the audit sequence number up to which the store's totals are
complete. At start-up the gateway loads the current periods' totals and replays the audit log's
request records after the watermark, so a crash loses no spend. The watermark only advances when no
audit write is outstanding, so a crash can at worst count a request twice (over, never under).

Keys with a use limit take each use durably in the store before the request is forwarded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from gatepass.audit import AuditRecord
from gatepass.audit.reader import records_after
from gatepass.metering.counters import Counters, Line
from gatepass.store import Store, Transaction
from gatepass.store.interface import SpendRow
from gatepass.units import Period, period_start

__all__ = ["SpendLedger"]

log = logging.getLogger("gatepass.spend")
_WATERMARK = "spend.audit_seq"


class SpendLedger:
    """Write-behind of settled spend and key use stamps to the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: dict[Line, int] = {}
        self._touched: dict[str, tuple[datetime, str | None]] = {}
        self._seq = 0
        self._flushed_seq = 0
        #: Audit writes in flight; while any is, the watermark does not advance.
        self.auditing = 0

    def charge(self, lines: Sequence[Line], micros: int, seq: int) -> None:
        for line in lines:
            self._pending[line] = self._pending.get(line, 0) + micros
        self._seq = max(self._seq, seq)

    def touch(self, key_id: str, at: datetime, source_ip: str | None) -> None:
        self._touched[key_id] = (at, source_ip)

    async def take_use(self, key_id: str, at: datetime, source_ip: str | None) -> bool:
        def take() -> bool:
            with self._store.transaction(write=True) as tx:
                return tx.consume_key_use(key_id, at, source_ip)

        return await asyncio.to_thread(take)

    def flush(self) -> None:
        """Write what is pending (blocking: call it in a thread, or at shutdown)."""
        pending, self._pending = self._pending, {}
        touched, self._touched = self._touched, {}
        seq = self._seq if self.auditing == 0 else self._flushed_seq
        if not pending and not touched and seq == self._flushed_seq:
            return
        try:
            with self._store.transaction(write=True) as tx:
                tx.add_spend(
                    [
                        SpendRow(line.scope, line.owner_id, line.period, line.start, micros)
                        for line, micros in pending.items()
                    ]
                )
                tx.touch_keys([(key_id, at, ip) for key_id, (at, ip) in touched.items()])
                tx.set_meta(_WATERMARK, str(seq))
        except Exception:
            # Put it back: the next flush tries again. The audit log still has every request.
            for line, micros in pending.items():
                self._pending[line] = self._pending.get(line, 0) + micros
            self._touched = {**touched, **self._touched}
            raise
        self._flushed_seq = seq

    async def run(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.flush)
            except Exception:
                log.exception("could not write spend to the store; will retry")

    @staticmethod
    def load(tx: Transaction, counters: Counters, audit_dir: Path, since: datetime) -> int:
        """Fill ``counters`` with the store's totals of periods started at or after ``since`` (and
        every total line), then replay the audit records after the watermark. Returns records replayed."""
        for row in tx.get_spend():
            if row.period is Period.TOTAL or row.period_start >= since:
                counters.add_spend([Line(row.scope, row.owner_id, row.period, row.period_start)], row.micros)
        watermark = int(tx.get_meta(_WATERMARK) or 0)
        replayed = 0
        for record in records_after(audit_dir, watermark):
            lines = _lines_of(record)
            if lines:
                counters.add_spend(lines, _cost_of(record))
                replayed += 1
        return replayed


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
    moment = datetime.fromtimestamp(t, UTC)
    lines = []
    for period in Period:
        start = period_start(period, moment)
        lines += [Line("agent", agent_id, period, start), Line("key", key_id, period, start)]
    return lines
