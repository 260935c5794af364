"""AsyncAuditWriter: group commit for concurrent callers, durability before return, failures.

Most tests run twice: with the fdatasync handed to the kernel (Linux AIO, the default on Linux)
and in the writer's helper thread (the fallback). ``on_fsync`` replaces the fdatasync on both
paths, so the same test controls either.
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from caio.linux_aio_asyncio import AsyncioContext
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatepass.audit import AsyncAuditWriter, AuditLog, AuditRecord, verify_directory
from gatepass.errors import AuditWriteError

from .helpers import event

OpenLog = Callable[..., AuditLog]


@pytest.fixture(params=["kernel", "thread"])
def kernel(request: pytest.FixtureRequest) -> bool:
    """Where the writer's fdatasyncs run: handed to the kernel (True) or in its helper thread."""
    return bool(request.param == "kernel")


FsyncHook = Callable[[int, Callable[[], None]], None]


def on_fsync(monkeypatch: pytest.MonkeyPatch, hook: FsyncHook, *, kernel_sleep: float = 0.0) -> None:
    """Run ``hook(fd, do_it)`` in place of each fdatasync (or fsync) on either path; ``do_it()``
    makes the real one. On the kernel path the real one is awaited after ``hook`` returned, and
    ``kernel_sleep`` seconds pass (on the loop) before it is submitted."""
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name, os.fsync)

        def in_thread(fd: int, real: Callable[[int], None] = real) -> None:
            hook(fd, lambda: real(fd))

        monkeypatch.setattr(os, name, in_thread, raising=False)
    real_fdsync = AsyncioContext.fdsync

    async def in_kernel(self: AsyncioContext, fd: int) -> None:
        if kernel_sleep:
            await asyncio.sleep(kernel_sleep)
        done: list[bool] = []
        hook(fd, lambda: done.append(True))
        if done:
            await real_fdsync(self, fd)

    monkeypatch.setattr(AsyncioContext, "fdsync", in_kernel)


def track_durable(log: AuditLog, monkeypatch: pytest.MonkeyPatch, slow: float = 0.0) -> list[int]:
    """After each fsync of the log file, the highest seq it made durable (everything written before
    it); each fsync takes ``slow`` seconds more."""
    synced: list[int] = []

    def track(fd: int, do_it: Callable[[], None]) -> None:
        covered = log._seq  # set only after its record was written, so written before this fsync
        if slow and threading.current_thread() is not threading.main_thread():
            time.sleep(slow)  # in the writer's helper thread, never on the event loop
        do_it()
        if fd == log._log_fd:
            synced.append(covered)

    on_fsync(monkeypatch, track, kernel_sleep=slow)
    return synced


async def test_concurrent_writes_are_batched_durable_and_chained(
    log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    log = open_log()
    durable = track_durable(log, monkeypatch, slow=0.005)
    writer = AsyncAuditWriter(log, kernel_sync=kernel)
    before = log.fsync_count

    async def one(i: int) -> AuditRecord:
        await asyncio.sleep(0.001 * (i % 20))  # arrive over ~20 ms, while batches are written
        record = await writer.write(event(i))
        assert durable and record.seq <= max(durable)  # durable before write() returned
        return record

    records = await asyncio.gather(*(one(i) for i in range(200)))
    assert [r.meta["n"] for r in records] == list(range(200))
    assert sorted(r.seq for r in records) == list(range(1, 201))
    fsyncs = log.fsync_count - before
    assert 1 <= fsyncs < 50  # group commit: far fewer fsyncs than records
    # A round may find its records fsynced already by the round before (written while that one's
    # thread was waking up): its sync() is a no-op without an fsync.
    assert writer.syncs >= len(durable) == fsyncs and writer.batches >= fsyncs
    assert writer.sync_method == ("kernel" if kernel else "thread")
    assert sorted(list(log.iter_records()), key=lambda r: r.seq) == sorted(records, key=lambda r: r.seq)
    await writer.close()
    report = verify_directory(log_dir, key.public_key())
    assert report.ok and report.records == 200 and report.last_checkpoint_seq == 200


async def test_the_writes_of_one_loop_turn_are_one_batch(open_log: OpenLog, kernel: bool) -> None:
    log = open_log()
    writer = AsyncAuditWriter(log, kernel_sync=kernel)
    before = log.fsync_count
    await asyncio.gather(*(writer.write(event(i)) for i in range(100)))
    assert writer.batches == 1 and writer.syncs == 1 and log.fsync_count - before == 1


async def test_a_failed_batch_fails_every_waiter_and_the_writer_goes_on(
    log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    log = open_log()
    writer = AsyncAuditWriter(log, kernel_sync=kernel)
    failures = iter([True])

    def fsync_failing_once(fd: int, do_it: Callable[[], None]) -> None:
        if next(failures, False):
            # caio reports a failed operation as SystemError(strerror)
            raise OSError(errno.EIO, "Input/output error") if not kernel else SystemError("Input/output error")
        do_it()

    on_fsync(monkeypatch, fsync_failing_once)
    results = await asyncio.gather(*(writer.write(event(i)) for i in range(10)), return_exceptions=True)
    assert writer.syncs == 1  # all ten waited on the one fsync that failed
    assert all(isinstance(r, AuditWriteError) for r in results)
    assert len({id(r) for r in results}) == 10  # each waiter has its own exception
    assert "Input/output error" in str(results[0])

    records = await asyncio.gather(*(writer.write(event(i)) for i in range(10, 20)))
    # The ten are in the file (written before the fsync failed), followed by a record that says so.
    assert [r.seq for r in records] == list(range(12, 22))
    note = next(r for r in log.iter_records() if r.seq == 11)
    assert note.action == "audit.sync_failed" and note.meta["first_seq"] == 1 and note.meta["last_seq"] == 10
    await writer.close()
    report = verify_directory(log_dir, key.public_key())
    assert report.ok and report.records == 21


async def test_an_unrecordable_event_fails_only_its_caller(open_log: OpenLog) -> None:
    writer = AsyncAuditWriter(open_log())
    bad = event(1)
    bad.meta["token"] = object()  # type: ignore[index]
    results = await asyncio.gather(
        writer.write(event(0)), writer.write(bad), writer.write(event(2)), return_exceptions=True
    )
    assert isinstance(results[1], TypeError)
    assert [r.seq for r in results if isinstance(r, AuditRecord)] == [1, 2]


async def test_the_event_loop_runs_while_a_batch_is_written(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper thread's fsync (the kernel path has no blocking call to wait on)."""
    log = open_log()
    writer = AsyncAuditWriter(log, kernel_sync=False)
    loop_ran = threading.Event()

    def fsync_waiting_for_the_loop(fd: int, do_it: Callable[[], None]) -> None:
        # Deadlocks (then fails after 10 s) if the write blocked the event loop.
        if not loop_ran.wait(timeout=10):
            raise OSError(errno.ETIMEDOUT, "the event loop was blocked")
        do_it()

    on_fsync(monkeypatch, fsync_waiting_for_the_loop)
    pending = asyncio.ensure_future(writer.write(event()))
    for _ in range(1000):
        await asyncio.sleep(0.001)
        if writer.batches:
            break
    loop_ran.set()
    record = await pending
    assert record.seq == 1


async def test_flush_and_close(log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog, kernel: bool) -> None:
    log = open_log()
    writer = AsyncAuditWriter(log, kernel_sync=kernel)
    await writer.flush()  # nothing pending: returns at once
    tasks = [asyncio.ensure_future(writer.write(event(i))) for i in range(5)]
    await asyncio.sleep(0)
    await writer.flush()
    assert all(task.done() for task in tasks)
    more = [asyncio.ensure_future(writer.write(event(i))) for i in range(5, 8)]
    await asyncio.sleep(0)
    await writer.close()
    assert all(task.done() and not task.exception() for task in more)
    report = verify_directory(log_dir, key.public_key())
    assert report.ok and report.records == 8 and report.last_checkpoint_seq == 8
    with pytest.raises(AuditWriteError, match="closed"):
        await writer.write(event())
    assert writer.log is log


async def test_write_durability_fsyncs_soon_after_each_write(open_log: OpenLog, kernel: bool) -> None:
    log = open_log()
    writer = AsyncAuditWriter(log, durable=False, sync_interval=0.005, kernel_sync=kernel)
    before = log.fsync_count
    await writer.write(event(0))  # returns once written, before any fsync
    for _ in range(200):
        await asyncio.sleep(0.005)
        if not log._unsynced:
            break
    assert not log._unsynced and log.fsync_count > before
    # A write made while an fsync runs is fsynced by another one, with no further write needed.
    synced = log.fsync_count
    await asyncio.gather(*(writer.write(event(i)) for i in range(1, 5)))
    for _ in range(200):
        await asyncio.sleep(0.005)
        if not log._unsynced:
            break
    assert not log._unsynced and log.fsync_count > synced
    await writer.close()


async def test_an_unexpected_fsync_failure_refuses_its_waiters(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    log = open_log()
    writer = AsyncAuditWriter(log, kernel_sync=kernel)
    failures = iter([True])

    def failing_once(fd: int, do_it: Callable[[], None]) -> None:
        if next(failures, False):
            raise RuntimeError("a bug, not an OSError")
        do_it()

    on_fsync(monkeypatch, failing_once)
    results = await asyncio.gather(*(writer.write(event(i)) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, AuditWriteError) for r in results)  # fail closed, never hang
    assert (await writer.write(event(3))).seq == 5  # 1-3, the note that they were not fsynced, then this
    await writer.close()


async def test_on_linux_the_fdatasync_is_handed_to_the_kernel(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default no thread of the process takes part: the kernel does the fdatasync (Linux AIO)
    and its completion arrives on the event loop. (Linux only: gatepass's platform.)"""
    log = open_log()
    durable = track_durable(log, monkeypatch)
    writer = AsyncAuditWriter(log)
    for i in range(3):
        record = await writer.write(event(i))
        assert durable and record.seq <= max(durable)
    assert writer.sync_method == "kernel"
    assert not writer._syncer._alive  # its helper thread never started
    await writer.close()


async def test_without_linux_aio_a_helper_thread_fsyncs(
    open_log: OpenLog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_aio(self: AsyncioContext, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")  # a sandbox that forbids io_setup

    monkeypatch.setattr(AsyncioContext, "__init__", no_aio)
    log = open_log()
    durable = track_durable(log, monkeypatch)
    writer = AsyncAuditWriter(log)
    with caplog.at_level("INFO", logger="gatepass.audit"):
        records = [await writer.write(event(i)) for i in range(3)]
    assert writer.sync_method == "thread"
    assert all(record.seq <= max(durable) for record in records)
    assert "helper thread" in caplog.text and "Function not implemented" in caplog.text
    await writer.close()
