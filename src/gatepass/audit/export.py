"""A self-contained export of an audit log, and its verification.

An export is one stream of JSON lines (UTF-8)::

    {"format":"gatepass-audit-export","key_id":"<16 hex>","public_key":"<base64 raw>","version":1}
    <every line of audit.jsonl, byte for byte>
    {"checkpoint":<every line of checkpoints.jsonl, byte for byte>}

so it can be archived or handed to an auditor and checked with :func:`verify_export` without the
log's directory. The header's public key only makes the export self-describing: an auditor who
knows the expected key passes it, and a different key in the header is reported ``unknown_key``.
"""

from __future__ import annotations

import base64
import binascii
import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gatepass.errors import AuditError

from . import _files
from .checkpoint import key_id_of, public_key_bytes
from .record import AuditMalformedError, canonical_json
from .verify import Problem, ProblemKind, VerifyReport, first_problem, verify_lines

__all__ = [
    "EXPORT_FORMAT",
    "ExportHeader",
    "ExportStats",
    "parse_export_header",
    "verify_export",
    "write_export",
]

EXPORT_FORMAT: Final = "gatepass-audit-export"
_VERSION: Final = 1
_CP_PREFIX: Final = b'{"checkpoint":'
_SOURCE: Final = "export"


@dataclass(frozen=True)
class ExportHeader:
    """The first line of an export: the public key that signed its checkpoints."""

    public_key: Ed25519PublicKey
    key_id: str

    def encode(self) -> bytes:
        """The header line, newline included."""
        return (
            canonical_json(
                {
                    "format": EXPORT_FORMAT,
                    "version": _VERSION,
                    "public_key": base64.b64encode(public_key_bytes(self.public_key)).decode("ascii"),
                    "key_id": self.key_id,
                }
            )
            + b"\n"
        )


@dataclass(frozen=True)
class ExportStats:
    """How many records and checkpoints an export holds."""

    records: int
    checkpoints: int


def write_export(directory: Path, public_key: Ed25519PublicKey, out: IO[bytes]) -> ExportStats:
    """Write the log in ``directory`` to ``out`` as an export stream (complete lines only).

    ``public_key`` is the key that signs the log's checkpoints; it goes into the header.
    """
    directory = Path(directory)
    try:
        snap = _files.snapshot(directory)
    except OSError as exc:
        raise AuditError(f"cannot read the audit log in {directory}: {exc.strerror}") from exc
    if snap.log_fd is None:
        snap.close()
        raise AuditError(f"no audit log in {directory}; check the path (or GATEPASS_HOME)")
    try:
        out.write(ExportHeader(public_key, key_id_of(public_key)).encode())
        records = 0
        for _, line in _files.iter_lines_forward(snap.log_fd, snap.log_end):
            out.write(line + b"\n")
            records += 1
        checkpoints = 0
        if snap.checkpoints_fd is not None:
            for _, line in _files.iter_lines_forward(snap.checkpoints_fd, snap.checkpoints_end):
                out.write(_CP_PREFIX + line + b"}\n")
                checkpoints += 1
    except OSError as exc:
        raise AuditError(f"cannot export the audit log in {directory}: {exc.strerror}") from exc
    finally:
        snap.close()
    return ExportStats(records, checkpoints)


def parse_export_header(line: bytes) -> ExportHeader:
    """Parse the first line of an export strictly; :class:`AuditMalformedError` if it is not one."""
    raw = line[:-1] if line.endswith(b"\n") else line

    def bad(detail: str) -> AuditMalformedError:
        return AuditMalformedError(f"export line 1 is not a gatepass audit export header ({detail})", 1)

    try:
        obj: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("not UTF-8 JSON") from None
    if type(obj) is not dict or set(obj) != {"format", "version", "public_key", "key_id"}:
        raise bad("wrong set of fields")
    if obj["format"] != EXPORT_FORMAT or type(obj["version"]) is not int:
        raise bad("unknown format")
    if obj["version"] != _VERSION:
        raise bad(f"version {obj['version']} is not supported; upgrade gatepass")
    try:
        raw_key = base64.b64decode(str(obj["public_key"]), validate=True)
        public_key = Ed25519PublicKey.from_public_bytes(raw_key)
    except (binascii.Error, ValueError):
        raise bad("public_key is not a base64 Ed25519 key") from None
    header = ExportHeader(public_key, key_id_of(public_key))
    if obj["key_id"] != header.key_id:
        raise bad("key_id does not match public_key")
    if header.encode() != raw + b"\n":
        raise bad("not in canonical form")
    return header


def _lines(stream: IO[bytes], start: int) -> Iterator[tuple[int, bytes]]:
    """Numbered lines after the header (line 2 on)."""
    stream.seek(start)
    stream.readline()
    yield from enumerate(iter(stream.readline, b""), start=2)


def _checkpoint_lines(stream: IO[bytes], start: int) -> tuple[list[tuple[int, bytes]], Problem | None]:
    """The checkpoints (unwrapped), which follow the records; and a line out of that layout, if any."""
    found: list[tuple[int, bytes]] = []
    problem: Problem | None = None
    for lineno, line in _lines(stream, start):
        if found or line.startswith(_CP_PREFIX):
            body = line[:-1] if line.endswith(b"\n") else line
            if body.startswith(_CP_PREFIX) and body.endswith(b"}"):
                found.append((lineno, body[len(_CP_PREFIX) : -1]))
            elif problem is None:
                problem = Problem(
                    ProblemKind.MALFORMED,
                    None,
                    f"export line {lineno} follows the checkpoints but is not one (records must all come first)",
                    lineno,
                )
    return found, problem


def _record_lines(stream: IO[bytes], start: int) -> Iterator[tuple[int, bytes]]:
    for lineno, line in _lines(stream, start):
        if line.startswith(_CP_PREFIX):
            return
        yield lineno, line


def verify_export(
    stream: IO[bytes], public_key: Ed25519PublicKey | None = None, *, max_unchecked: int | None = None
) -> VerifyReport:
    """Verify an export stream (a binary file; a pipe is first spooled to a private temp file).

    With ``public_key`` the checkpoints must be signed by it (a different key in the header is
    ``unknown_key``); without it the header's key is used, which proves integrity but not origin.
    """
    if not stream.seekable():
        spool: IO[bytes] = tempfile.TemporaryFile()
        shutil.copyfileobj(stream, spool)
        spool.seek(0)
        try:
            return verify_export(spool, public_key, max_unchecked=max_unchecked)
        finally:
            spool.close()
    start = stream.tell()
    try:
        header = parse_export_header(stream.readline())
    except AuditMalformedError as exc:
        return VerifyReport(0, 0, 0, 0, Problem(ProblemKind.MALFORMED, None, exc.message, 1))
    key_problem: Problem | None = None
    notes: tuple[str, ...] = ()
    if public_key is None:
        public_key = header.public_key
        notes = (
            f"checked against the key in the export header ({header.key_id}); "
            "pass the expected public key to prove who signed it",
        )
    elif public_key_bytes(public_key) != public_key_bytes(header.public_key):
        key_problem = Problem(
            ProblemKind.UNKNOWN_KEY,
            None,
            f"the export was signed with key {header.key_id}, not with the expected key {key_id_of(public_key)}",
            1,
        )
    checkpoints, layout_problem = _checkpoint_lines(stream, start)  # first pass: the few checkpoints
    report = verify_lines(
        _record_lines(stream, start),  # second pass: records, streamed
        checkpoints,
        public_key,
        max_unchecked=max_unchecked,
        record_source=_SOURCE,
        checkpoint_source=_SOURCE,
    )
    return replace(report, problem=key_problem or first_problem(report.problem, layout_problem), notes=notes)
