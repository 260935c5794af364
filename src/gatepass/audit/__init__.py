"""The tamper-evident audit log: hash-chained records, signed checkpoints, verification, export.

Write with :class:`AuditLog` (files and group commit) or, from async code, through
:class:`AsyncAuditWriter`; check with :func:`verify_directory`, :func:`verify` or
:func:`verify_export`. The format and what verification can and cannot prove are described in
:mod:`gatepass.audit.record`, :mod:`gatepass.audit.checkpoint` and :mod:`gatepass.audit.verify`.

Example::

    with AuditLog(home / "audit", signing_key) as log:          # CLI: one batch per command
        log.append([AuditEvent("admin", "agent.create", "acme-research-dev", "ok", "admin")])

    writer = AsyncAuditWriter(log)                               # gateway: group commit
    record = await writer.write(event)                           # returns once durable

    verify_directory(home / "audit", public_key).raise_for_problem()
"""

from __future__ import annotations

from .checkpoint import Checkpoint, key_id_of
from .export import ExportHeader, ExportStats, verify_export, write_export
from .log import AuditLog
from .reader import iter_directory, records_after, tail_directory
from .record import (
    GENESIS_HASH,
    AuditEvent,
    AuditMalformedError,
    AuditRecord,
    encode_record,
    parse_record,
)
from .verify import Problem, ProblemKind, VerifyReport, verify, verify_directory
from .writer import AsyncAuditWriter

__all__ = [
    "GENESIS_HASH",
    "AsyncAuditWriter",
    "AuditEvent",
    "AuditLog",
    "AuditMalformedError",
    "AuditRecord",
    "Checkpoint",
    "ExportHeader",
    "ExportStats",
    "Problem",
    "ProblemKind",
    "VerifyReport",
    "encode_record",
    "iter_directory",
    "key_id_of",
    "parse_record",
    "records_after",
    "tail_directory",
    "verify",
    "verify_directory",
    "verify_export",
    "write_export",
]
