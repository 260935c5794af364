"""Spend persistence: write-behind with a watermark, and replay of the audit log after a crash."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatepass.audit import AuditEvent, AuditLog
from gatepass.dataplane.spend import SpendLedger
from gatepass.metering.counters import Line, MemoryCounters
from gatepass.store import SqlStore, sqlite_url
from gatepass.store.interface import SpendRow
from gatepass.units import Period, period_start

T = datetime(2026, 11, 27, 12, tzinfo=UTC)
DAY = T.toordinal()


def _request(cost: int) -> AuditEvent:
    return AuditEvent(
        "agent:a",
        "request",
        "anthropic",
        "allow",
        "allowed",
        {"agent_id": "ag_1", "key": "key_1", "cost_micros": cost, "t": int(T.timestamp())},
    )


def _line(scope: str, period: Period) -> Line:
    return Line(scope, "ag_1" if scope == "agent" else "key_1", period, period_start(period, T))


def test_flush_then_replay_counts_every_request_once(tmp_path: Path) -> None:
    store = SqlStore(sqlite_url(tmp_path / "s.db"), create=True)
    log = AuditLog(tmp_path / "audit", Ed25519PrivateKey.generate())
    ledger = SpendLedger(store)
    lines = [_line(s, p) for p in Period for s in ("agent", "key")]
    first = log.append([_request(100)])[0]
    ledger.charge("ag_1", "key_1", DAY, 100, first.seq)
    ledger.flush()  # stored, watermark = first.seq
    second = log.append([_request(40)])[0]
    ledger.charge("ag_1", "key_1", DAY, 40, second.seq)  # then the gateway dies before the next flush
    counters = MemoryCounters()
    with store.transaction() as tx:
        assert {(r.scope, r.owner_id, r.period, r.period_start, r.micros) for r in tx.get_spend()} == {
            (*line, 100) for line in lines if line.period in (Period.DAY, Period.TOTAL)
        }  # a day line and a total line each: weeks and months are sums of days
        replayed = SpendLedger.load(tx, counters, tmp_path / "audit", T)
    assert replayed == 1
    for line in lines:
        assert counters.totals(line, T).spent == 140
    store.close()
    log.close()


def test_loading_takes_only_the_agents_and_keys_wanted(tmp_path: Path) -> None:
    """The store keeps a total for every key that ever spent; the gateway loads those it holds."""
    store = SqlStore(sqlite_url(tmp_path / "s.db"), create=True)
    log = AuditLog(tmp_path / "audit", Ed25519PrivateKey.generate())
    ledger = SpendLedger(store)
    ledger.charge("ag_1", "key_gone", DAY, 100, 0)
    ledger.flush()
    ledger.charge("ag_1", "key_1", DAY, 7, log.append([_request(7)])[0].seq)  # replayed from the audit log
    counters = MemoryCounters()
    with store.transaction() as tx:
        SpendLedger.load(tx, counters, tmp_path / "audit", T, lambda scope, owner: owner != "key_gone")
    assert len(counters) == 2  # ag_1 and key_1
    assert counters.spent("agent", "ag_1", T) == dict.fromkeys(Period, 107)
    assert counters.spent("key", "key_1", T) == dict.fromkeys(Period, 7)
    assert counters.spent("key", "key_gone", T) == dict.fromkeys(Period, 0)
    store.close()
    log.close()


def test_the_watermark_does_not_advance_while_an_audit_write_is_outstanding(tmp_path: Path) -> None:
    store = SqlStore(sqlite_url(tmp_path / "s.db"), create=True)
    ledger = SpendLedger(store)
    ledger.charge("ag_1", "key_1", DAY, 10, 5)
    ledger.auditing = 1
    ledger.flush()
    with store.transaction() as tx:
        assert tx.get_meta("spend.audit_seq") == "0"  # a crash now may count twice, never zero times
        assert [r.micros for r in tx.get_spend()] == [10] * 4
    ledger.auditing = 0
    ledger.flush()
    with store.transaction() as tx:
        assert tx.get_meta("spend.audit_seq") == "5"
    store.close()


class SlowStore:
    """Records what is written; each write holds the store for a while, as a busy database does."""

    def __init__(self) -> None:
        self.rows: list[SpendRow] = []
        self.writing = threading.Lock()
        self.overlapped = False

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[SlowStore]:
        if not self.writing.acquire(blocking=False):
            self.overlapped = True  # a real store would wait for its lock, or fail
            self.writing.acquire()
        try:
            time.sleep(0.2)
            yield self
        finally:
            self.writing.release()

    def add_spend(self, rows: Iterable[SpendRow]) -> None:
        self.rows += rows

    def touch_keys(self, uses: object) -> None:
        pass

    def set_meta(self, name: str, value: str) -> None:
        pass


async def test_shutdown_waits_for_the_write_in_progress_then_writes_the_rest() -> None:
    store = SlowStore()
    ledger = SpendLedger(cast(SqlStore, store))
    runner = asyncio.create_task(ledger.run(interval=0.01))
    ledger.charge("ag_1", "key_1", DAY, 100, 1)
    await asyncio.sleep(0.1)  # the first write is under way
    ledger.charge("ag_1", "key_2", DAY, 40, 2)  # taken by nobody yet
    runner.cancel()
    with suppress(asyncio.CancelledError):
        await runner
    await ledger.close()
    assert not store.overlapped
    assert sum(r.micros for r in store.rows if r.scope == "agent" and r.period is Period.TOTAL) == 140
    assert {r.owner_id for r in store.rows if r.scope == "key"} == {"key_1", "key_2"}
