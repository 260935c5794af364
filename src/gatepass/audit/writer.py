"""`AsyncAuditWriter`: group commit of audit records for the async gateway.

Two durabilities:

- ``fsync`` (``durable=True``): each ``await writer.write(event)`` returns only once its record
  is fsynced. Callers that arrive while a batch is being written (in a worker thread, never on the
  event loop) wait together and go out in the next batch: one ``write`` and one ``fsync`` for all
  of them, so the cost of durability is paid per batch, and the batch grows with the load.
- ``write`` (``durable=False``): the records of one turn of the event loop are written to the file
  together (one ``write``, on the loop: it is short) before ``write()`` returns, so they survive a
  crash of the gateway; a worker thread fsyncs them every ``sync_interval`` seconds, and no
  checkpoint ever covers a record before it is fsynced. A power cut can lose the last interval.
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
    """Batches concurrent :meth:`write` calls into :meth:`AuditLog.append` calls.

    At most one batch is in flight; at most ``max_batch`` events go into one batch. If a batch
    fails, every caller waiting on it gets an :class:`AuditWriteError` (so the gateway refuses
    those requests), and the next batch is tried afresh. The writer does not own the log:
    :meth:`close` flushes and checkpoints but leaves the log open. :attr:`batches` counts the
    batches handed to the log (failed ones included).
    """

    def __init__(
        self, log: AuditLog, *, max_batch: int = 4096, durable: bool = True, sync_interval: float = 0.01
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._log = log
        self._max_batch = max_batch
        self._durable = durable
        self._sync_interval = sync_interval
        self._drain_scheduled = False
        self._syncer: asyncio.Task[None] | None = None
        self._pending: list[_Waiter] = []
        self._inflight: list[_Waiter] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0

    @property
    def log(self) -> AuditLog:
        """The log written to."""
        return self._log

    async def write(self, event: AuditEvent) -> AuditRecord:
        """Record ``event``; return its record once it is durable.

        Raises :class:`AuditWriteError` if its batch could not be made durable, and
        :class:`TypeError` (for this caller only) if ``event`` holds a value that cannot be recorded.
        A caller cancelled while waiting does not withdraw its event: it is still written.
        """
        if self._closed:
            raise AuditWriteError("the audit writer is closed; no record can be written after shutdown")
        check_event(event)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AuditRecord] = loop.create_future()
        self._pending.append((event, future))
        if not self._durable:
            if not self._drain_scheduled:
                self._drain_scheduled = True
                loop.call_soon(self._drain)
        elif self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="gatepass-audit-writer")
        return await future

    def _drain(self) -> None:
        """``write`` durability: append this turn's events now (no fsync); start the syncer."""
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
        for (_, future), record in zip(batch, records, strict=True):
            if not future.done():
                future.set_result(record)
        if self._syncer is None or self._syncer.done():
            self._syncer = asyncio.get_running_loop().create_task(self._sync_soon(), name="gatepass-audit-sync")

    async def _sync_soon(self) -> None:
        await asyncio.sleep(self._sync_interval)
        try:
            await asyncio.to_thread(self._log.sync)
        except AuditWriteError:
            _log.error(
                "audit fsync failed; records written since the last fsync may not survive a power cut", exc_info=True
            )

    async def flush(self) -> None:
        """Wait until every event written so far is durable (or has failed, which its caller sees)."""
        futures = [future for _, future in (*self._inflight, *self._pending)]
        if futures:
            await asyncio.wait(futures)

    async def close(self) -> None:
        """Refuse new writes, flush, and sign a checkpoint of the log's head (which fsyncs first)."""
        self._closed = True
        await self.flush()
        if self._task is not None and not self._task.done():
            await self._task
        if self._syncer is not None and not self._syncer.done():
            await self._syncer
        await asyncio.to_thread(self._log.checkpoint)

    async def _run(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._inflight = batch
                self.batches += 1
                try:
                    records = await asyncio.to_thread(self._log.append, [event for event, _ in batch])
                except AuditWriteError as exc:
                    _fail(batch, exc.message, exc)
                except Exception as exc:
                    _log.error("audit batch failed", exc_info=True)
                    _fail(batch, f"the audit batch failed ({type(exc).__name__}); see the gateway log", exc)
                else:
                    for (_, future), record in zip(batch, records, strict=True):
                        if not future.done():
                            future.set_result(record)
                finally:
                    self._inflight = []
        except asyncio.CancelledError:
            stopped = "the audit writer was stopped; whether these records are durable is unknown"
            _fail([*self._inflight, *self._pending], stopped, None)
            self._pending.clear()
            raise


def _fail(batch: list[_Waiter], message: str, cause: BaseException | None) -> None:
    """Give each waiter of ``batch`` its own AuditWriteError (one exception object per raise)."""
    for _, future in batch:
        if not future.done():
            error = AuditWriteError(message)
            error.__cause__ = cause
            future.set_exception(error)
