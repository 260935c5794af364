"""Verification of an audit log: the hash chain, and the signed checkpoints that anchor it.

What is detected, and how (the report names the *first* bad record by its position's seq):

- ``malformed``: a line that is not exactly the canonical encoding of a record or checkpoint.
- ``edited``: a record whose content does not hash to its ``hash`` field (an edit of any field,
  ``hash`` and ``prev`` included), or whose ``prev`` is not the hash of the record before it
  (an edit whose hash was recomputed is caught at the next record).
- ``deleted``: the seq jumps forward and the skipped seqs appear nowhere later in the log.
- ``reordered``: the seq jumps forward but a skipped seq appears later (records swapped or
  moved), or the seq goes backward (a record moved back or duplicated); likewise checkpoints
  whose seqs do not increase.
- ``truncated``: a valid checkpoint covers a seq beyond the last record (records cut at or
  before the last checkpoint); or the checkpoints are missing altogether from a directory that
  has records (see :func:`verify_directory`), or more records than ``max_unchecked`` follow the
  last checkpoint.
- ``bad_signature``: a checkpoint whose signature does not verify (forged or edited).
- ``unknown_key``: a checkpoint (or an export) signed by a key the verifier was not given.
- ``checkpoint_mismatch``: a validly signed checkpoint whose hash differs from the hash of the
  record at its seq: the chain up to there was rewritten with recomputed hashes.

What cannot be detected, and why: without the signing key, anyone can still *cut off* records
written after the last checkpoint (nothing signed mentions them), and can cut the checkpoints
file's tail together with the log at an earlier checkpoint. Whoever holds the signing key can
rewrite everything and sign it again. So the checkpoint cadence (``checkpoint_every`` records or
``checkpoint_seconds``) bounds what an attacker without the key can silently remove: at most the
records of the last interval. Keep the signing key away from the log (and export regularly).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gatepass.errors import AuditError, AuditTamperedError

from . import _files
from .checkpoint import Checkpoint, key_id_of, parse_checkpoint, verify_checkpoint
from .record import GENESIS_HASH, AuditMalformedError, parse_record_hashed

__all__ = [
    "Problem",
    "ProblemKind",
    "VerifyReport",
    "first_problem",
    "verify",
    "verify_directory",
    "verify_lines",
]

Line = bytes | str


class ProblemKind(enum.StrEnum):
    """What verification found wrong (see the module docstring)."""

    MALFORMED = "malformed"
    EDITED = "edited"
    DELETED = "deleted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"


@dataclass(frozen=True)
class Problem:
    """The first problem found: its kind, the seq of the first bad record (``None`` when no seq
    applies, e.g. an unreadable checkpoint line), a one-line message, and the line number in its
    file or stream when there is one."""

    kind: ProblemKind
    seq: int | None
    message: str
    line: int | None = None


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a verification.

    ``records`` and ``checkpoints`` count the lines read; ``last_seq`` is the last record that
    verified in an unbroken chain; ``notes`` are facts worth telling that are not tampering
    (e.g. an unfinished last line left by a crash).
    """

    records: int
    checkpoints: int
    last_seq: int
    last_checkpoint_seq: int
    problem: Problem | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return self.problem is None

    def raise_for_problem(self) -> None:
        """Raise :class:`AuditTamperedError` with the problem's message, if there is one."""
        if self.problem is not None:
            raise AuditTamperedError(f"audit log verification failed ({self.problem.kind}): {self.problem.message}")


def first_problem(*problems: Problem | None) -> Problem | None:
    """The problem at the lowest seq (those without a seq last); ties go to the earlier argument."""
    found = [p for p in problems if p is not None]
    if not found:
        return None
    return min(found, key=lambda p: p.seq if p.seq is not None else float("inf"))


def _key_map(public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
    return {key_id_of(key): key for key in keys}


def _read_checkpoints(
    lines: Iterable[tuple[int, Line]], keys: dict[str, Ed25519PublicKey], source: str
) -> tuple[dict[int, Checkpoint], int, Problem | None]:
    """Parse and check every checkpoint; return the good ones by seq, the count, the first problem."""
    good: dict[int, Checkpoint] = {}
    count, last, problem = 0, 0, None
    for lineno, line in lines:
        count += 1
        found: Problem | None = None
        try:
            cp = parse_checkpoint(line, lineno, source=source)
        except AuditMalformedError as exc:
            found = Problem(ProblemKind.MALFORMED, None, exc.message, lineno)
        else:
            key = keys.get(cp.key_id)
            where = f"{source} line {lineno} (checkpoint of seq {cp.seq})"
            if key is None:
                found = Problem(
                    ProblemKind.UNKNOWN_KEY,
                    cp.seq,
                    f"{where} is signed by key {cp.key_id}, which is not a trusted key",
                    lineno,
                )
            elif not verify_checkpoint(cp, key):
                found = Problem(
                    ProblemKind.BAD_SIGNATURE,
                    cp.seq,
                    f"{where} has a signature that does not verify: forged or edited",
                    lineno,
                )
            elif cp.seq <= last:
                found = Problem(
                    ProblemKind.REORDERED, cp.seq, f"{where} follows a checkpoint of seq {last}: out of order", lineno
                )
            else:
                good[cp.seq] = cp
                last = cp.seq
        if problem is None:
            problem = found
    return good, count, problem


class _Chain:
    """Walks the records once, in order, keeping only what the next record needs."""

    def __init__(self, checkpoints: dict[int, Checkpoint], source: str) -> None:
        self.checkpoints = checkpoints
        self.source = source
        self.count = 0
        self.expected = 1
        self.prev = GENESIS_HASH
        self.problem: Problem | None = None
        self.gap: tuple[int, int] | None = None  # skipped seqs [lo, hi), not yet seen further on
        self.last_good_cp = 0

    def feed(self, lineno: int, line: Line) -> None:
        self.count += 1
        if self.problem is not None and self.gap is None:
            return
        where = f"{self.source} line {lineno}"
        try:
            rec, content_hash = parse_record_hashed(line, lineno, source=self.source)
        except AuditMalformedError as exc:
            if self.problem is None:
                self.problem = Problem(ProblemKind.MALFORMED, self.expected, exc.message, lineno)
            return
        if self.gap is not None:
            lo, hi = self.gap
            if lo <= rec.seq < hi and self.problem is not None:
                self.gap = None
                self.problem = replace(
                    self.problem,
                    kind=ProblemKind.REORDERED,
                    message=f"record {lo} is out of place: it appears later, at {where}",
                )
            return
        e = self.expected
        if content_hash != rec.hash:
            self.problem = Problem(
                ProblemKind.EDITED, e, f"{where} (record {e}) was edited: its content does not match its hash", lineno
            )
        elif rec.seq > e:
            self.gap = (e, rec.seq)
            missing = f"record {e}" if rec.seq == e + 1 else f"records {e}..{rec.seq - 1}"
            self.problem = Problem(ProblemKind.DELETED, e, f"{missing} deleted: {where} has seq {rec.seq}", lineno)
        elif rec.seq < e:
            self.problem = Problem(
                ProblemKind.REORDERED,
                e,
                f"{where} has seq {rec.seq} where record {e} belongs: moved or duplicated",
                lineno,
            )
        elif rec.prev != self.prev:
            self.problem = Problem(
                ProblemKind.EDITED,
                e,
                f"{where} (record {e}) does not chain to record {e - 1}: one of them was rewritten",
                lineno,
            )
        else:
            cp = self.checkpoints.get(e)
            if cp is not None and cp.hash != rec.hash:
                self.problem = Problem(
                    ProblemKind.CHECKPOINT_MISMATCH,
                    e,
                    f"record {e} differs from its signed checkpoint: records after "
                    f"{self.last_good_cp} up to {e} were rewritten",
                    lineno,
                )
                return
            if cp is not None:
                self.last_good_cp = e
            self.expected = e + 1
            self.prev = rec.hash


def _numbered(lines: Iterable[Line]) -> Iterator[tuple[int, Line]]:
    return enumerate(lines, start=1)


def verify_lines(
    records: Iterable[tuple[int, Line]],
    checkpoints: Iterable[tuple[int, Line]],
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey],
    *,
    max_unchecked: int | None = None,
    record_source: str = "audit.jsonl",
    checkpoint_source: str = "checkpoints.jsonl",
) -> VerifyReport:
    """:func:`verify` over lines that carry their own line numbers (for exports and files)."""
    good, n_cp, cp_problem = _read_checkpoints(checkpoints, _key_map(public_key), checkpoint_source)
    chain = _Chain(good, record_source)
    for lineno, line in records:
        chain.feed(lineno, line)
    last_seq = chain.expected - 1
    last_cp = max(good, default=0)
    end_problem: Problem | None = None
    if chain.problem is not None:
        pass
    elif last_cp > last_seq:
        end_problem = Problem(
            ProblemKind.TRUNCATED,
            last_seq + 1,
            f"the log ends at record {last_seq} but a signed checkpoint covers record {last_cp}: records were cut off",
        )
    elif max_unchecked is not None and last_seq - last_cp > max_unchecked:
        end_problem = Problem(
            ProblemKind.TRUNCATED,
            last_cp + 1,
            f"{last_seq - last_cp} records follow the last checkpoint (seq {last_cp}), "
            f"more than {max_unchecked}: checkpoints may have been removed",
        )
    problem = first_problem(chain.problem, cp_problem, end_problem)
    return VerifyReport(chain.count, n_cp, last_seq, last_cp, problem)


def verify(
    records: Iterable[Line],
    checkpoints: Iterable[Line],
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey],
    *,
    max_unchecked: int | None = None,
) -> VerifyReport:
    """Verify record lines and checkpoint lines (with or without newlines) against trusted keys.

    ``public_key`` is the log's key, or several (e.g. before and after a key rotation).
    ``records`` is consumed once, as a stream; ``checkpoints`` is read first and held in memory.
    ``max_unchecked``, if given, is how many records may follow the last checkpoint.
    """
    return verify_lines(_numbered(records), _numbered(checkpoints), public_key, max_unchecked=max_unchecked)


def _lines_of(fd: int | None, end: int) -> Iterator[tuple[int, bytes]]:
    return _files.iter_lines_forward(fd, end) if fd is not None else iter(())


def verify_directory(
    directory: Path,
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey],
    *,
    max_unchecked: int | None = None,
) -> VerifyReport:
    """Verify the log in ``directory`` (written by :class:`~gatepass.audit.log.AuditLog`).

    Safe while writers run: the files are cut at their last complete line under a shared lock.
    An unfinished last line (a crash during a write, recovered by the next append) is a note, not
    a problem. ``checkpoints.jsonl`` is created with the log, so a log with records but no
    checkpoints file is reported ``truncated`` (the checkpoints were removed); an empty
    checkpoints file is normal for a young log and is reported as a note.
    """
    directory = Path(directory)
    if not (directory / _files.LOG_FILE).exists() and not (directory / _files.CHECKPOINTS_FILE).exists():
        raise AuditError(f"no audit log in {directory}; check the path (or GATEPASS_HOME)")
    try:
        snap = _files.snapshot(directory)
    except OSError as exc:
        raise AuditError(f"cannot read the audit log in {directory}: {exc.strerror}") from exc
    try:
        records = _lines_of(snap.log_fd, snap.log_end)
        cps = _lines_of(snap.checkpoints_fd, snap.checkpoints_end)
        try:
            report = verify_lines(records, cps, public_key, max_unchecked=max_unchecked)
        except OSError as exc:
            raise AuditError(f"cannot read the audit log in {directory}: {exc.strerror}") from exc
    finally:
        snap.close()
    notes: list[str] = []
    missing: Problem | None = None
    if snap.log_fd is None and report.checkpoints:
        missing = Problem(ProblemKind.TRUNCATED, 1, f"{_files.LOG_FILE} is missing but checkpoints exist")
    if snap.checkpoints_fd is None and report.records:
        missing = Problem(
            ProblemKind.TRUNCATED,
            1,
            f"{_files.CHECKPOINTS_FILE} is missing: nothing proves the log was not cut; "
            "restore it from a backup or an export",
        )
    elif report.records and not report.checkpoints:
        notes.append(f"no checkpoint yet: the {report.records} records are covered by the hash chain only")
    for name, torn in ((_files.LOG_FILE, snap.log_torn), (_files.CHECKPOINTS_FILE, snap.checkpoints_torn)):
        if torn:
            notes.append(
                f"{name} ends with {torn} bytes of an unfinished write (a crash); "
                "the next append moves them to a .torn- file"
            )
    return replace(report, problem=first_problem(report.problem, missing), notes=tuple(notes))
