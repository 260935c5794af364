"""`AsyncAuditWriter`: group commit of audit records for the async gateway.

The records of one turn of the event loop are encoded and written to the file together, on the
loop (one short ``write``), so the loop never waits on another thread for that work. Then:

- ``fsync`` durability (``durable=True``): a worker thread fsyncs the file, and each
  ``await writer.write(event)`` returns once an fsync has covered its record. Records written while
  an fsync is under way wait for the next one, together: one fsync per group, however many
  requests are waiting, and the worker thread does no Python work but the fsync itself.
- ``write`` durability (``durable=False``): ``write()`` returns as soon as the record is in the
  file (safe from a crash of the gateway); the worker fsyncs within ``sync_interval`` seconds. A
  power cut can lose that interval. No checkpoint ever covers a record before it is fsynced.
"""

from __future__ import annotations

import asyncio
import logging

from gatepass.errors import AuditWriteError

from .log import AuditLog
from .record import AuditEvent, AuditRecord, check_event

__all__ = ["AsyncAuditWriter"]

_log = logging.getLogger("gatepass.audit")

_Waiter = tuple[AuditEvent, "asyncio.Future[AuditRecord]"]


class AsyncAuditWriter:
    """Group commit of :meth:`write` calls into :meth:`AuditLog.append` and :meth:`AuditLog.sync`.

    If a write or an fsync fails, every caller waiting on it gets an :class:`AuditWriteError` (so
    the gateway refuses those requests), and later writes are tried afresh. The writer does not own
    the log: :meth:`close` flushes and checkpoints but leaves the log open. :attr:`batches` counts the
    writes handed to the log (failed ones included), :attr:`syncs` the fsyncs.
    """

    def __init__(self, log: AuditLog, *, durable: bool = True, sync_interval: float = 0.01) -> None:
        self._log = log
        self._durable = durable
        self._sync_interval = sync_interval
        self._pending: list[_Waiter] = []
        self._drain_scheduled = False
        self._unsynced: list[tuple[asyncio.Future[AuditRecord], AuditRecord]] = []
        self._syncer: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0
        self.syncs = 0

    @property
    def log(self) -> AuditLog:
        """The log written to."""
        return self._log

    async def write(self, event: AuditEvent) -> AuditRecord:
        """Record ``event``; return its record once it is durable (see the module docstring).

        Raises :class:`AuditWriteError` if it could not be written or fsynced, and
        :class:`TypeError` (for this caller only) if ``event`` holds a value that cannot be recorded.
        A caller cancelled while waiting does not withdraw its event: it is still written.
        """
        if self._closed:
            raise AuditWriteError("the audit writer is closed; no record can be written after shutdown")
        check_event(event)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AuditRecord] = loop.create_future()
        self._pending.append((event, future))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            loop.call_soon(self._drain)
        return await future

    def _drain(self) -> None:
        """Write this turn's events (no fsync), then hand them to the syncer or release them."""
        self._drain_scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        self.batches += 1
        try:
            records = self._log.append([event for event, _ in batch], durable=False)
        except AuditWriteError as exc:
            _fail(batch, exc.message, exc)
            return
        except Exception as exc:
            _log.error("audit batch failed", exc_info=True)
            _fail(batch, f"the audit batch failed ({type(exc).__name__}); see the gateway log", exc)
            return
        if self._durable:
            self._unsynced.extend((future, record) for (_, future), record in zip(batch, records, strict=True))
        else:
            for (_, future), record in zip(batch, records, strict=True):
                if not future.done():
                    future.set_result(record)
        if self._syncer is None or self._syncer.done():
            self._syncer = asyncio.get_running_loop().create_task(self._sync(), name="gatepass-audit-sync")

    async def _sync(self) -> None:
        """Fsync in a worker thread until nothing written is left unsynced."""
        if not self._durable:
            await asyncio.sleep(self._sync_interval)
        while True:
            waiters, self._unsynced = self._unsynced, []
            try:
                self.syncs += 1
                await asyncio.to_thread(self._log.sync)
            except AuditWriteError as exc:
                _log.error(
                    "audit fsync failed; records since the last fsync may not survive a power cut", exc_info=True
                )
                for future, _ in waiters:
                    if not future.done():
                        future.set_exception(AuditWriteError(exc.message))
                if waiters:
                    self._note_unsynced(waiters[0][1].seq, waiters[-1][1].seq)
            else:
                for future, record in waiters:
                    if not future.done():
                        future.set_result(record)
            if not self._unsynced:
                return

    def _note_unsynced(self, first: int, last: int) -> None:
        """Their fsync failed: those records are in the file, but their requests were refused. Say so."""
        note = AuditEvent(
            actor="gatepass",
            action="audit.sync_failed",
            target="audit.jsonl",
            decision="error",
            reason="fsync_failed",
            meta={"first_seq": first, "last_seq": last, "effect": "the requests of these records were refused"},
        )
        try:
            self._log.append([note], durable=False)
        except AuditWriteError:
            _log.error("audit: could not record that records %d-%d were not fsynced", first, last)

    async def flush(self) -> None:
        """Wait until every event written so far is durable (or has failed, which its caller sees)."""
        futures = [future for _, future in self._pending] + [future for future, _ in self._unsynced]
        if futures:
            await asyncio.wait(futures)
        if self._syncer is not None and not self._syncer.done():
            await self._syncer

    async def close(self) -> None:
        """Refuse new writes, flush, and sign a checkpoint of the log's head (which fsyncs first)."""
        self._closed = True
        await self.flush()
        await asyncio.to_thread(self._log.checkpoint)


def _fail(batch: list[_Waiter], message: str, cause: BaseException | None) -> None:
    """Give each waiter of ``batch`` its own AuditWriteError (one exception object per raise)."""
    for _, future in batch:
        if not future.done():
            error = AuditWriteError(message)
            error.__cause__ = cause
            future.set_exception(error)
