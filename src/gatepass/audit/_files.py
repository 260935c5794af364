"""Low-level file helpers of the audit log: private files, locks, and reading lines by blocks.

Everything here works on raw file descriptors with positional reads (``os.pread``), so several
threads may read one descriptor and a reader never moves a writer's offset.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

__all__ = [
    "CHECKPOINTS_FILE",
    "LOCK_FILE",
    "LOG_FILE",
    "Snapshot",
    "committed_end",
    "ensure_private_dir",
    "iter_lines_forward",
    "iter_lines_reverse",
    "open_private",
    "read_exact",
    "save_private",
    "shared_lock",
    "snapshot",
    "write_all",
]

LOG_FILE: Final = "audit.jsonl"
CHECKPOINTS_FILE: Final = "checkpoints.jsonl"
LOCK_FILE: Final = "audit.lock"

BLOCK: int = 64 * 1024
"""Bytes read per step when scanning; a module attribute so tests can shrink it."""


def ensure_private_dir(directory: Path) -> bool:
    """Create ``directory`` as 0700 if missing (mode set explicitly, whatever the umask).

    Returns True when it was created.
    """
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        return False
    os.chmod(directory, 0o700)
    return True


def open_private(path: Path, flags: int) -> tuple[int, bool]:
    """Open ``path`` with ``flags``, creating it as 0600 (set explicitly) if missing.

    Returns ``(fd, created)``.
    """
    flags |= os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return os.open(path, flags), False
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return fd, True


def save_private(directory: Path, prefix: str, moment: datetime, data: bytes, fsync: Callable[[int], None]) -> str:
    """Write ``data`` durably to a new 0600 file ``<prefix><UTC stamp>`` and return its name."""
    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    for attempt in range(100):
        name = f"{prefix}{stamp}" + (f"-{attempt}" if attempt else "")
        try:
            fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, 0o600)
            write_all(fd, data)
            fsync(fd)
        finally:
            os.close(fd)
        return name
    raise FileExistsError(f"too many {prefix}* files for one instant")


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (normally one ``write`` call; loops on a short write)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exact(fd: int, length: int, offset: int) -> bytes:
    """Read exactly ``length`` bytes at ``offset``; OSError if the file is shorter."""
    data = os.pread(fd, length, offset)
    while len(data) < length:
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            raise OSError(f"file ended {length - len(data)} bytes early while reading")
        data += more
    return data


def committed_end(fd: int, size: int) -> int:
    """Offset just after the last newline in the first ``size`` bytes (0 if none).

    Bytes past it are a torn (unfinished) last line. Reads backward from ``size`` by blocks.
    """
    pos = size
    while pos > 0:
        start = max(0, pos - BLOCK)
        chunk = read_exact(fd, pos - start, start)
        index = chunk.rfind(b"\n")
        if index >= 0:
            return start + index + 1
        pos = start
    return 0


def iter_lines_reverse(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, line)`` for each line ending before ``end``, the last line first.

    ``end`` must follow a newline (see :func:`committed_end`); lines are yielded without it.
    Reads backward by blocks, so the cost is proportional to what the caller consumes.
    """
    pos = end
    buf = b""
    stop = 0  # buf[:stop] is unconsumed and, when stop > 0, ends with a newline
    while pos > 0:
        start = max(0, pos - BLOCK)
        buf = read_exact(fd, pos - start, start) + buf[:stop]
        pos = start
        stop = len(buf)
        while True:
            index = buf.rfind(b"\n", 0, stop - 1)
            if index < 0:
                break
            yield pos + index + 1, buf[index + 1 : stop - 1]
            stop = index + 1
    if stop > 0:
        yield 0, buf[: stop - 1]


def iter_lines_forward(fd: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(lineno, line)`` (1-based, newline stripped) for the lines in the first ``end`` bytes.

    A last piece without a newline is yielded too (callers pass a committed end to avoid it).
    """
    pos = 0
    lineno = 0
    rest = b""
    while pos < end:
        chunk = read_exact(fd, min(BLOCK, end - pos), pos)
        pos += len(chunk)
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            lineno += 1
            yield lineno, line
    if rest:
        yield lineno + 1, rest


@contextmanager
def shared_lock(directory: Path) -> Iterator[None]:
    """Hold a shared lock on the log's lock file, if there is one (verifiers never create it)."""
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass(frozen=True)
class Snapshot:
    """Open descriptors of a log directory's two files, cut at their last complete line.

    ``None`` for a file that does not exist. ``*_torn`` counts bytes of an unfinished last line.
    """

    log_fd: int | None
    log_end: int
    log_torn: int
    checkpoints_fd: int | None
    checkpoints_end: int
    checkpoints_torn: int

    def close(self) -> None:
        for fd in (self.log_fd, self.checkpoints_fd):
            if fd is not None:
                os.close(fd)


def _open_cut(path: Path) -> tuple[int | None, int, int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, 0, 0
    try:
        size = os.fstat(fd).st_size
        end = committed_end(fd, size)
    except OSError:
        os.close(fd)
        raise
    return fd, end, size - end


def snapshot(directory: Path) -> Snapshot:
    """Open both files under a shared lock and note how far each is complete.

    Writers only ever add bytes after these ends (or cut a torn tail, which lies after them), so
    the snapshot stays consistent after the lock is released.
    """
    with shared_lock(directory):
        log_fd, log_end, log_torn = _open_cut(directory / LOG_FILE)
        try:
            cp_fd, cp_end, cp_torn = _open_cut(directory / CHECKPOINTS_FILE)
        except OSError:
            if log_fd is not None:
                os.close(log_fd)
            raise
    return Snapshot(log_fd, log_end, log_torn, cp_fd, cp_end, cp_torn)
