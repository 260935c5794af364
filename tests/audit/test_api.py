"""The public surface of gatepass.audit, pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import gatepass.audit


def test_public_names_are_pinned() -> None:
    assert sorted(gatepass.audit.__all__) == [
        "AsyncAuditWriter",
        "AuditEvent",
        "AuditLog",
        "AuditMalformedError",
        "AuditRecord",
        "Checkpoint",
        "ExportHeader",
        "ExportStats",
        "GENESIS_HASH",
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
    for name in gatepass.audit.__all__:
        assert getattr(gatepass.audit, name) is not None
