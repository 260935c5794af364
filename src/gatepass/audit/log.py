"""`AuditLog`: the file-backed, append-only, hash-chained audit log with signed checkpoints.

A log directory holds::

    audit.jsonl        one canonical record per line (see gatepass.audit.record)
    checkpoints.jsonl  one signed checkpoint per line (see gatepass.audit.checkpoint)
    audit.lock         the flock file: every batch is written under an exclusive lock on it
    audit.torn-<ts>    bytes of an unfinished last line found after a crash (kept as evidence)

Writing is group commit: one :meth:`AuditLog.append` call is one ``write`` and one ``fsync``.
Several processes may append to one directory; each batch takes the lock, and an instance that
finds the file changed by someone else re-reads only the last line to continue the chain.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gatepass.errors import AuditError, AuditWriteError
from gatepass.units import utcnow

from . import _files
from ._files import CHECKPOINTS_FILE, LOCK_FILE, LOG_FILE
from .checkpoint import (
    Checkpoint,
    encode_checkpoint,
    key_id_of,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from .reader import iter_directory, tail_directory
from .record import (
    GENESIS_HASH,
    AuditEvent,
    AuditMalformedError,
    AuditRecord,
    format_ts,
    parse_record,
    seal_record,
)

__all__ = ["AuditLog"]

_log = logging.getLogger("gatepass.audit")


def _parse_ts(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _sync_data(fd: int) -> None:
    sync = getattr(os, "fdatasync", None)  # looked up per call, so tests can replace it
    (sync or os.fsync)(fd)


class AuditLog:
    """An append-only audit log in ``directory``, checkpointed with ``signing_key``.

    A checkpoint is written when ``checkpoint_every`` records or ``checkpoint_seconds`` (by
    ``clock``) have passed since the last one, checked after each append; by :meth:`checkpoint`;
    and by :meth:`close` when this instance appended anything not yet checkpointed. Methods are
    thread-safe; :attr:`fsync_count` counts every ``fsync`` this instance made.
    """

    def __init__(
        self,
        directory: Path,
        signing_key: Ed25519PrivateKey,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 10.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if checkpoint_every < 1 or checkpoint_seconds <= 0:
            raise ValueError("checkpoint_every must be >= 1 and checkpoint_seconds > 0")
        self._dir = Path(directory)
        self._key = signing_key
        self.public_key: Ed25519PublicKey = signing_key.public_key()
        self.key_id = key_id_of(self.public_key)
        self._every = checkpoint_every
        self._seconds = checkpoint_seconds
        self._clock = clock or utcnow
        self.fsync_count = 0
        self._unsynced = False  # records written by non-durable appends and not yet fsynced
        self._mutex = threading.Lock()
        self._closed = False
        self._appended = False
        # What this instance last saw (-1: unknown, re-read under the lock before writing).
        self._log_size = -1
        self._seq = 0
        self._hash = GENESIS_HASH
        self._cp_size = -1
        self._cp_seq = 0
        self._cp_time = self._now()
        try:
            created = _files.ensure_private_dir(self._dir)
            fds: list[int] = []
            try:
                for name, flags in (
                    (LOG_FILE, os.O_RDWR | os.O_APPEND),
                    (CHECKPOINTS_FILE, os.O_RDWR | os.O_APPEND),
                    (LOCK_FILE, os.O_RDWR),
                ):
                    fd, made = _files.open_private(self._dir / name, flags)
                    fds.append(fd)
                    created = created or made
                if created:
                    self._fsync_dir()  # make the new names durable too
            except OSError:
                for fd in fds:
                    os.close(fd)
                raise
            self._log_fd, self._cp_fd, self._lock_fd = fds
        except OSError as exc:
            raise self._error("open", exc) from exc

    @property
    def directory(self) -> Path:
        """The log's directory."""
        return self._dir

    # -- writing ---------------------------------------------------------------------------

    def append(self, events: Sequence[AuditEvent], *, durable: bool = True) -> list[AuditRecord]:
        """Append ``events`` as one batch (one write, one fsync) and return their records.

        With ``durable=False`` the batch is written to the file (it survives a crash of this
        process) and fsynced later by :meth:`sync` or by the next durable append or checkpoint.
        Raises :class:`AuditWriteError` when the batch could not be written; the file is then left
        as it was. A torn last line left by a crash is first moved aside and noted by an extra
        ``audit.recovered`` record (committed on its own, not returned).
        """
        if not events:
            return []
        with self._locked(fcntl.LOCK_EX):
            self._sync_log()
            records = self._commit(events, durable=durable)
            self._appended = True
            try:
                if self._checkpoint_due():
                    self._write_checkpoint()
            except AuditError as exc:
                # The records are durable; a missed checkpoint is retried on the next append and
                # by close(), which raises if it still fails.
                _log.warning("audit checkpoint deferred: %s", exc)
        return records

    def sync(self) -> bool:
        """Fsync what non-durable appends wrote; True if there was something to sync. The lock is
        not held during the fsync, so appends go on meanwhile."""
        fd = self.begin_sync()
        if fd is None:
            return False
        try:
            _sync_data(fd)  # counted by begin_sync
        except OSError as exc:
            self.sync_failed()
            raise self._error("sync", exc) from exc
        return True

    def begin_sync(self) -> int | None:
        """For an fsync made elsewhere (see :class:`~gatepass.audit.AsyncAuditWriter`): the log
        file's descriptor to fdatasync, or None if nothing written is waiting for one. Every record
        written so far counts as synced once that fdatasync succeeds; if it fails, call
        :meth:`sync_failed`."""
        with self._mutex:
            self._check_open()
            if not self._unsynced:
                return None
            self._unsynced = False
            self.fsync_count += 1
            return self._log_fd

    def sync_failed(self) -> None:
        """The fdatasync of :meth:`begin_sync` failed: what it covered is still waiting for one."""
        with self._mutex:
            self._unsynced = True

    def sync_error(self, exc: BaseException) -> AuditWriteError:
        """The error to report for a failed fdatasync made elsewhere (see :meth:`begin_sync`)."""
        if isinstance(exc, OSError):
            return self._error("sync", exc)
        # caio reports a failed operation as SystemError(strerror).
        return self._error("sync", OSError(0, str(exc) or type(exc).__name__))

    def checkpoint(self) -> Checkpoint | None:
        """Sign and write a checkpoint of the last record now, unless one already covers it."""
        with self._locked(fcntl.LOCK_EX):
            return self._write_checkpoint()

    def close(self) -> None:
        """Checkpoint what this instance appended (if not yet covered) and release the files."""
        try:
            with self._mutex:
                if self._closed:
                    return
                appended = self._appended
            if appended:
                self.checkpoint()
        finally:
            with self._mutex:
                if not self._closed:
                    self._closed = True
                    for fd in (self._log_fd, self._cp_fd, self._lock_fd):
                        os.close(fd)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------

    def iter_records(self) -> Iterator[AuditRecord]:
        """Every complete record, first to last (see :func:`~gatepass.audit.reader.iter_directory`)."""
        return iter_directory(self._dir)

    def tail(self, n: int, predicate: Callable[[AuditRecord], bool] | None = None) -> list[AuditRecord]:
        """The last ``n`` records (matching ``predicate``, if given), oldest first, read from the end
        (see :func:`~gatepass.audit.reader.tail_directory`)."""
        return tail_directory(self._dir, n, predicate)

    # -- internals -------------------------------------------------------------------------

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        with self._mutex:
            self._check_open()
            try:
                fcntl.flock(self._lock_fd, mode)
            except OSError as exc:
                raise self._error("lock", exc) from exc
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _check_open(self) -> None:
        if self._closed:
            raise AuditWriteError(f"the audit log in {self._dir} is closed; open it again to write")

    def _now(self) -> datetime:
        return self._clock()

    def _error(self, what: str, exc: OSError) -> AuditWriteError:
        reason = exc.strerror or type(exc).__name__
        return AuditWriteError(
            f"cannot {what} the audit log in {self._dir}: {reason}; "
            "free disk space or fix the folder's permissions, then retry"
        )

    def _fsync(self, fd: int) -> None:
        """Make a file's written data durable. ``fdatasync`` where there is one: it also flushes the
        size an append changed (what reading the data back needs) and skips only timestamps, for
        about half the cost of ``fsync`` on ext4."""
        self.fsync_count += 1
        _sync_data(fd)

    def _fsync_dir(self) -> None:
        fd = os.open(self._dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self.fsync_count += 1
            os.fsync(fd)
        finally:
            os.close(fd)

    def _sync_log(self) -> None:
        """Catch up with the file (under the lock): last seq and hash, and recover a torn tail."""
        try:
            size = os.fstat(self._log_fd).st_size
            if size == self._log_size:
                return
            end = _files.committed_end(self._log_fd, size)
            last = next(_files.iter_lines_reverse(self._log_fd, end), None)
        except OSError as exc:
            raise self._error("read", exc) from exc
        if last is None:
            self._seq, self._hash = 0, GENESIS_HASH
        else:
            try:
                record = parse_record(last[1], offset=last[0])
            except AuditMalformedError as exc:
                raise AuditWriteError(
                    f"cannot continue the audit chain: {exc.message}. Move the damaged log aside "
                    "after exporting it, then retry"
                ) from exc
            self._seq, self._hash = record.seq, record.hash
        self._log_size = size
        if size > end:
            self._recover_torn(self._log_fd, LOG_FILE, end, size)

    def _recover_torn(self, fd: int, name: str, end: int, size: int) -> None:
        """Move the unfinished line of ``name`` to a private file, cut it, and record that."""
        moment = self._now()
        try:
            data = _files.read_exact(fd, size - end, end)
            prefix = f"{name.split('.')[0]}.torn-"
            torn_name = _files.save_private(self._dir, prefix, moment, data, self._fsync)
            self._fsync_dir()
            os.ftruncate(fd, end)
            self._fsync(fd)
        except OSError as exc:
            raise self._error("recover", exc) from exc
        if fd == self._log_fd:
            self._log_size = end
        else:
            self._cp_size = end
        _log.warning("audit: moved %d bytes of an unfinished line of %s to %s", size - end, name, torn_name)
        event = AuditEvent(
            actor="gatepass",
            action="audit.recovered",
            target=name,
            decision="ok",
            reason="torn_tail",
            meta={"bytes": size - end, "file": torn_name},
        )
        self._commit([event])

    def _commit(self, events: Sequence[AuditEvent], *, durable: bool = True) -> list[AuditRecord]:
        """Write ``events`` after the known head in one write and (if ``durable``) one fsync (under the lock)."""
        ts = format_ts(self._now())
        records: list[AuditRecord] = []
        seq, prev = self._seq, self._hash
        lines: list[bytes] = []
        for event in events:
            seq += 1
            record, line = seal_record(seq, ts, event, prev)
            records.append(record)
            lines.append(line)
            prev = record.hash
        data = b"".join(lines)
        start = self._log_size
        try:
            _files.write_all(self._log_fd, data)
            if durable:
                self._fsync(self._log_fd)  # makes earlier non-durable writes durable too
                self._unsynced = False
            else:
                self._unsynced = True
        except OSError as exc:
            self._log_size = -1
            try:
                os.ftruncate(self._log_fd, start)
            except OSError:
                _log.error("audit: could not cut a failed write back to %d bytes", start)
            raise self._error("write", exc) from exc
        self._log_size = start + len(data)
        self._seq, self._hash = seq, prev
        return records

    def _sync_checkpoints(self) -> None:
        try:
            size = os.fstat(self._cp_fd).st_size
            if size == self._cp_size:
                return
            end = _files.committed_end(self._cp_fd, size)
            last = next(_files.iter_lines_reverse(self._cp_fd, end), None)
        except OSError as exc:
            raise self._error("read", exc) from exc
        if last is None:
            self._cp_seq = 0
        else:
            self._adopt_checkpoint(last[1])
        self._cp_size = size
        if size > end:
            self._sync_log()
            self._recover_torn(self._cp_fd, CHECKPOINTS_FILE, end, size)

    def _adopt_checkpoint(self, line: bytes) -> None:
        """Continue from the last checkpoint line, unless it cannot be trusted.

        A damaged, forged or impossible last line must not stop checkpoints (it would leave new
        records unsigned): it is logged and ignored here, and reported by verification. A line
        signed by another key is trusted as far as its seq (the signing key was rotated).
        """
        try:
            checkpoint = parse_checkpoint(line)
        except AuditMalformedError as exc:
            problem = exc.message
        else:
            if checkpoint.key_id == self.key_id and not verify_checkpoint(checkpoint, self.public_key):
                problem = "the last checkpoint is not validly signed"
            elif checkpoint.seq > self._seq:
                problem = f"the last checkpoint covers record {checkpoint.seq}, the log ends at {self._seq}"
            else:
                self._cp_seq, self._cp_time = checkpoint.seq, _parse_ts(checkpoint.ts)
                return
        _log.error("audit: %s; checkpoints go on after it; run `gatepass audit verify`", problem)

    def _checkpoint_due(self) -> bool:
        self._sync_checkpoints()
        if self._seq <= self._cp_seq:
            return False
        elapsed = (self._now() - self._cp_time).total_seconds()
        return self._seq - self._cp_seq >= self._every or elapsed >= self._seconds

    def _write_checkpoint(self) -> Checkpoint | None:
        self._sync_log()
        self._sync_checkpoints()
        if self._seq <= self._cp_seq:
            return None
        if self._unsynced:  # a checkpoint never covers records that are not durable
            try:
                self._fsync(self._log_fd)
            except OSError as exc:
                raise self._error("sync", exc) from exc
            self._unsynced = False
        moment = self._now()
        checkpoint = sign_checkpoint(self._key, self._seq, self._hash, format_ts(moment))
        start = self._cp_size
        try:
            _files.write_all(self._cp_fd, encode_checkpoint(checkpoint))
            self._fsync(self._cp_fd)
        except OSError as exc:
            self._cp_size = -1
            try:
                os.ftruncate(self._cp_fd, start)
            except OSError:
                _log.error("audit: could not cut a failed checkpoint back to %d bytes", start)
            raise self._error("checkpoint", exc) from exc
        self._cp_size = start + len(encode_checkpoint(checkpoint))
        self._cp_seq, self._cp_time = checkpoint.seq, moment
        return checkpoint
