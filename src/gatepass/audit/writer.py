"""`AsyncAuditWriter`: group commit of audit records for the async gateway.

The records of one turn of the event loop are encoded and written to the file together, on the
loop (one short ``write``), so the loop never waits on another thread for that work. Then:

- ``fsync`` durability (``durable=True``): each ``await writer.write(event)`` returns once an
  fdatasync has covered its record. Records written while an fdatasync is under way wait for the
  next one, together: one fdatasync per group, however many requests are waiting.
- ``write`` durability (``durable=False``): ``write()`` returns as soon as the record is in the
  file (safe from a crash of the gateway); it is fdatasynced within ``sync_interval`` seconds. A
  power cut can lose that interval. No checkpoint ever covers a record before it is fsynced.

Where the fdatasync runs: on Linux it is handed to the kernel (Linux AIO, through ``caio``), which
runs it in a kernel worker and signals its completion on an eventfd the event loop watches. No
thread of this process takes part, so the loop never hands the GIL over for it: a helper thread
needs the GIL after each fsync, and while the loop is busy every callback's release of the GIL
wakes that waiting thread again (tens of futile wake-ups per fsync). Where Linux AIO cannot be
used (another system, a sandbox that forbids ``io_setup``), a helper thread of the writer's own
does the fdatasync.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Protocol

from gatepass.errors import AuditWriteError

from .log import AuditLog
from .record import AuditEvent, AuditRecord, check_event

__all__ = ["AsyncAuditWriter"]

_log = logging.getLogger("gatepass.audit")

_Waiter = tuple[AuditEvent, "asyncio.Future[AuditRecord]"]


class _Aio(Protocol):
    """What the writer uses of caio's Linux AIO context."""

    def fdsync(self, fd: int) -> Awaitable[object]: ...

    def close(self) -> None: ...


def _linux_aio(loop: asyncio.AbstractEventLoop) -> _Aio:
    """A Linux AIO context whose completions arrive on ``loop``; raises where there is none."""
    from caio.linux_aio_asyncio import AsyncioContext  # ImportError: not Linux, or no caio

    factory: Callable[..., _Aio] = AsyncioContext
    return factory(max_requests=4, loop=loop)


class AsyncAuditWriter:
    """Group commit of :meth:`write` calls into :meth:`AuditLog.append` and :meth:`AuditLog.sync`.

    If a write or an fsync fails, every caller waiting on it gets an :class:`AuditWriteError` (so
    the gateway refuses those requests), and later writes are tried afresh. The writer does not own
    the log: :meth:`close` flushes and checkpoints but leaves the log open. :attr:`batches` counts the
    writes handed to the log (failed ones included), :attr:`syncs` the fsyncs.

    The fdatasyncs are submitted to the kernel (see the module docstring) unless ``kernel_sync`` is
    False or Linux AIO cannot be set up; then they run in a thread of the writer's own
    (:class:`_SyncThread`), woken by releasing a lock, which answers on the loop with
    ``call_soon_threadsafe``. :attr:`sync_method` says which ("kernel" or "thread") once the first
    fdatasync has started.
    """

    def __init__(
        self, log: AuditLog, *, durable: bool = True, sync_interval: float = 0.01, kernel_sync: bool = True
    ) -> None:
        self._log = log
        self._durable = durable
        self._sync_interval = sync_interval
        self._loop: asyncio.AbstractEventLoop | None = None  # of the last write
        self._sync_loop: asyncio.AbstractEventLoop | None = None  # of the fsync under way
        self._pending: list[_Waiter] = []
        self._drain_scheduled = False
        #: Written, waiting for the next fsync (``durable``); those covered by the fsync under way.
        self._unsynced: list[tuple[asyncio.Future[AuditRecord], AuditRecord]] = []
        self._syncing: list[tuple[asyncio.Future[AuditRecord], AuditRecord]] = []
        self._dirty = False  # written since the last fsync started
        self._sync_round: asyncio.Future[None] | None = None  # the fsync under way
        self._sync_timer: asyncio.TimerHandle | None = None  # the next fsync (``write`` durability)
        self._syncer = _SyncThread(self._fsync_in_thread)
        self._kernel_sync = kernel_sync
        self._aio: _Aio | None = None  # for self._aio_loop
        self._aio_loop: asyncio.AbstractEventLoop | None = None
        self._sync_task: asyncio.Task[None] | None = None  # the kernel fdatasync under way
        self.sync_method = ""
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
        loop = self._loop = asyncio.get_running_loop()
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
        self._dirty = True
        if self._durable:
            self._unsynced.extend((future, record) for (_, future), record in zip(batch, records, strict=True))
            if self._sync_round is None:
                self._start_sync()
        else:
            for (_, future), record in zip(batch, records, strict=True):
                if not future.done():
                    future.set_result(record)
            if self._sync_round is None and self._sync_timer is None:
                assert self._loop is not None
                self._sync_timer = self._loop.call_later(self._sync_interval, self._start_sync)

    def _start_sync(self) -> None:
        """Start an fsync of what was written so far (on the loop; the fsync runs in the thread)."""
        assert self._loop is not None and self._sync_round is None
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        self._syncing, self._unsynced = self._unsynced, []
        self._dirty = False
        self._sync_round = self._loop.create_future()
        self._sync_loop = self._loop  # the loop to answer on (a later write may come from another)
        self.syncs += 1
        aio = self._aio_context(self._loop)
        if aio is None:
            self.sync_method = "thread"
            self._syncer.run()
            return
        self.sync_method = "kernel"
        try:
            fd = self._log.begin_sync()
        except AuditWriteError as exc:
            self._loop.call_soon(self._synced, exc)
            return
        if fd is None:  # an earlier fdatasync covered everything written so far
            self._loop.call_soon(self._synced, None)
        else:
            # Held until it ends: the loop keeps only a weak reference to a task.
            self._sync_task = self._loop.create_task(self._fdatasync_in_kernel(aio, fd))

    def _aio_context(self, loop: asyncio.AbstractEventLoop) -> _Aio | None:
        """The Linux AIO context for ``loop`` (made on first use), or None: use the thread."""
        if not self._kernel_sync:
            return None
        if self._aio is not None and self._aio_loop is loop:
            return self._aio
        self._close_aio()
        try:
            self._aio, self._aio_loop = _linux_aio(loop), loop
        except Exception as exc:  # no Linux AIO here (ENOSYS, EPERM in a sandbox, aio-max-nr reached)
            _log.info("audit: fdatasync runs in a helper thread; Linux AIO is not available (%s)", exc)
            self._kernel_sync = False
            return None
        return self._aio

    def _close_aio(self) -> None:
        if self._aio is not None:
            aio, self._aio, self._aio_loop = self._aio, None, None
            with suppress(Exception):  # its loop may be closed already
                aio.close()

    async def _fdatasync_in_kernel(self, aio: _Aio, fd: int) -> None:
        """Wait for the kernel's fdatasync of ``fd`` (begun by :meth:`AuditLog.begin_sync`), then report."""
        error: BaseException | None = None
        try:
            await aio.fdsync(fd)
        except asyncio.CancelledError:
            self._log.sync_failed()
            raise
        except BaseException as exc:
            self._log.sync_failed()
            error = self._log.sync_error(exc)
        self._sync_task = None
        self._synced(error)

    def _fsync_in_thread(self) -> None:
        """The thread's job: fsync the log, then tell the loop how it went."""
        try:
            self._log.sync()
            error: BaseException | None = None
        except BaseException as exc:
            error = exc
        assert self._sync_loop is not None
        with suppress(RuntimeError):  # the loop is closed: nobody is left waiting
            self._sync_loop.call_soon_threadsafe(self._synced, error)

    def _synced(self, error: BaseException | None) -> None:
        """On the loop, after an fsync: release (or fail) its waiters; start the next fsync if due."""
        waiters, self._syncing = self._syncing, []
        if error is None:
            for future, record in waiters:
                if not future.done():
                    future.set_result(record)
        else:
            message = (
                error.message
                if isinstance(error, AuditWriteError)
                else f"the audit fsync failed ({type(error).__name__}); see the gateway log"
            )
            _log.error("audit fsync failed; records since the last fsync may not survive a power cut", exc_info=error)
            for future, _ in waiters:
                if not future.done():
                    future.set_exception(AuditWriteError(message))
            if waiters:
                self._note_unsynced(waiters[0][1].seq, waiters[-1][1].seq)
        round_, self._sync_round = self._sync_round, None
        if round_ is not None and not round_.done():
            round_.set_result(None)
        if self._unsynced:
            self._start_sync()
        elif self._dirty and self._sync_timer is None:
            assert self._loop is not None
            self._sync_timer = self._loop.call_later(self._sync_interval, self._start_sync)

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
            self._dirty = True
        except AuditWriteError:
            _log.error("audit: could not record that records %d-%d were not fsynced", first, last)

    async def flush(self) -> None:
        """Wait until every event written so far is durable (or has failed, which its caller sees)."""
        futures = [future for _, future in self._pending]
        futures += [future for future, _ in self._unsynced] + [future for future, _ in self._syncing]
        if futures:
            await asyncio.wait(futures)
        while self._sync_round is not None or self._sync_timer is not None:
            if self._sync_round is None:
                self._start_sync()  # write durability: do not wait for the timer
            assert self._sync_round is not None
            await asyncio.shield(self._sync_round)

    async def close(self) -> None:
        """Refuse new writes, flush, and sign a checkpoint of the log's head (which fsyncs first)."""
        self._closed = True
        await self.flush()
        self._syncer.stop()
        self._close_aio()
        await asyncio.to_thread(self._log.checkpoint)


class _SyncThread:
    """A thread that runs ``job`` each time :meth:`run` is called (one run at a time, never
    overlapping: the caller starts the next only after the last one reported back). Waking it is
    the release of a lock. It ends after ``idle`` seconds without work (and starts again when
    needed), so a writer that is dropped without :meth:`AsyncAuditWriter.close` leaves no thread."""

    def __init__(self, job: Callable[[], None], idle: float = 10.0) -> None:
        self._job = job
        self._idle = idle
        self._go = threading.Lock()
        self._go.acquire()  # released once per run
        self._guard = threading.Lock()
        self._alive = False

    def run(self) -> None:
        with self._guard:
            if not self._alive:
                self._alive = True
                threading.Thread(target=self._main, name="gatepass-audit-sync", daemon=True).start()
            self._go.release()

    def stop(self) -> None:
        """Let the thread end now (it is idle: :meth:`AsyncAuditWriter.close` flushed first)."""
        self._idle = 0.0

    def _main(self) -> None:
        while True:
            if not self._go.acquire(timeout=self._idle or 0.001):
                with self._guard:
                    if not self._go.acquire(blocking=False):  # no run was asked for meanwhile
                        self._alive = False
                        return
            self._job()


def _fail(batch: list[_Waiter], message: str, cause: BaseException | None) -> None:
    """Give each waiter of ``batch`` its own AuditWriteError (one exception object per raise)."""
    for _, future in batch:
        if not future.done():
            error = AuditWriteError(message)
            error.__cause__ = cause
            future.set_exception(error)
