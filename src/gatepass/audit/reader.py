"""Reading an audit log directory without its signing key: forward, or backward from the end.

Both readers cut the file at its last complete line under a shared lock, so they never see half
of a batch that a writer is still writing, nor a torn line left by a crash.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from gatepass.errors import AuditError

from . import _files
from .record import AuditRecord, parse_record

__all__ = ["iter_directory", "iter_directory_reverse", "records_after", "tail_directory"]


def _open_log(directory: Path) -> tuple[int, int] | None:
    """``(fd, committed end)`` of the directory's log file, or None when there is none yet."""
    try:
        with _files.shared_lock(directory):
            fd = os.open(directory / _files.LOG_FILE, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return fd, _files.committed_end(fd, os.fstat(fd).st_size)
            except OSError:
                os.close(fd)
                raise
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditError(f"cannot read the audit log in {directory}: {exc.strerror}") from exc


def iter_directory(directory: Path) -> Iterator[AuditRecord]:
    """Every complete record of the log in ``directory``, first to last, as of the first ``next``.

    A malformed line raises :class:`~gatepass.audit.record.AuditMalformedError` naming its line.
    """
    opened = _open_log(Path(directory))
    if opened is None:
        return
    fd, end = opened
    try:
        for lineno, line in _files.iter_lines_forward(fd, end):
            yield parse_record(line, lineno)
    finally:
        os.close(fd)


def iter_directory_reverse(directory: Path) -> Iterator[AuditRecord]:
    """The records of the log in ``directory``, last to first, read backward from the end by blocks
    (so the cost depends on how far back the caller reads, not on the size of the log)."""
    opened = _open_log(Path(directory))
    if opened is None:
        return
    fd, end = opened
    try:
        for offset, line in _files.iter_lines_reverse(fd, end):
            yield parse_record(line, offset=offset)
    finally:
        os.close(fd)


def tail_directory(
    directory: Path, n: int, predicate: Callable[[AuditRecord], bool] | None = None
) -> list[AuditRecord]:
    """The last ``n`` records (those matching ``predicate``, if given) of the log, oldest first.
    An empty list when there is no log yet."""
    found: list[AuditRecord] = []
    if n > 0:
        for record in iter_directory_reverse(directory):
            if predicate is None or predicate(record):
                found.append(record)
                if len(found) == n:
                    break
    found.reverse()
    return found


def records_after(directory: Path, seq: int) -> list[AuditRecord]:
    """The records with a sequence number above ``seq``, oldest first."""
    found = list(itertools.takewhile(lambda record: record.seq > seq, iter_directory_reverse(directory)))
    found.reverse()
    return found
