"""Exports: a self-contained stream that verifies on its own, and finds tampering like a folder."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatepass.audit import ProblemKind, VerifyReport, verify_export, write_export
from gatepass.audit.export import parse_export_header
from gatepass.audit.record import AuditMalformedError

from .helpers import make_dir

KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


def expect(report: VerifyReport, kind: ProblemKind, seq: int | None) -> None:
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (kind, seq), report.problem.message


def test_export_round_trip_verifies(tmp_path: Path) -> None:
    out = io.BytesIO()
    stats = write_export(make_dir(tmp_path, KEY), PUBLIC, out)
    assert (stats.records, stats.checkpoints) == (12, 3)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(b'{"format":"gatepass-audit-export"')
    assert all(line.startswith(b'{"checkpoint":{') for line in lines[-3:])
    out.seek(0)
    report = verify_export(out, PUBLIC)
    assert report.ok and report.records == 12 and report.checkpoints == 3 and report.notes == ()
    out.seek(0)
    without_key = verify_export(out)
    assert without_key.ok and "pass the expected public key" in without_key.notes[0]


class _Pipe(io.RawIOBase):
    """A non-seekable stream, like a pipe or stdin."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)


def test_export_from_a_pipe_verifies(tmp_path: Path) -> None:
    out = io.BytesIO()
    write_export(make_dir(tmp_path, KEY), PUBLIC, out)
    assert verify_export(io.BufferedReader(_Pipe(out.getvalue())), PUBLIC).ok


def test_export_with_a_different_key_is_unknown_key(tmp_path: Path) -> None:
    out = io.BytesIO()
    write_export(make_dir(tmp_path, KEY), PUBLIC, out)
    out.seek(0)
    report = verify_export(out, OTHER_KEY.public_key())
    expect(report, ProblemKind.UNKNOWN_KEY, None)
    # A header that names another key than the one that signed is caught too.
    out2 = io.BytesIO()
    write_export(make_dir(tmp_path / "b", KEY), OTHER_KEY.public_key(), out2)
    out2.seek(0)
    expect(verify_export(out2), ProblemKind.UNKNOWN_KEY, 5)


Edit = Callable[[list[bytes]], None]


def _edit_record(lines: list[bytes]) -> None:
    lines[3] = lines[3].replace(b'"decision":"ok"', b'"decision":"no"')


def _drop_checkpoint_wrapper(lines: list[bytes]) -> None:
    lines[-1] = lines[-1][len(b'{"checkpoint":') : -1]


def _record_after_checkpoints(lines: list[bytes]) -> None:
    lines.append(lines[1])


def _bad_header(lines: list[bytes]) -> None:
    lines[0] = lines[0].replace(b'"version":1', b'"version":2')


@pytest.mark.parametrize(
    ("edit", "kind", "seq", "line"),
    [
        (_edit_record, ProblemKind.EDITED, 3, 4),
        (_drop_checkpoint_wrapper, ProblemKind.MALFORMED, None, 16),
        (_record_after_checkpoints, ProblemKind.MALFORMED, None, 17),
        (_bad_header, ProblemKind.MALFORMED, None, 1),
    ],
)
def test_tampered_exports_are_found(tmp_path: Path, edit: Edit, kind: ProblemKind, seq: int | None, line: int) -> None:
    out = io.BytesIO()
    write_export(make_dir(tmp_path, KEY), PUBLIC, out)
    lines = out.getvalue().splitlines()
    edit(lines)
    report = verify_export(io.BytesIO(b"\n".join(lines) + b"\n"), PUBLIC)
    expect(report, kind, seq)
    assert report.problem is not None and report.problem.line == line


def test_header_is_parsed_strictly() -> None:
    with pytest.raises(AuditMalformedError, match="line 1"):
        parse_export_header(b"")
    line = b'{"format":"gatepass-audit-export","key_id":"0000000000000000","public_key":"AAAA","version":1}'
    with pytest.raises(AuditMalformedError, match="public_key"):
        parse_export_header(line)


def test_header_names_its_key(tmp_path: Path) -> None:
    out = io.BytesIO()
    write_export(make_dir(tmp_path, KEY), PUBLIC, out)
    header = parse_export_header(out.getvalue().splitlines()[0])
    assert header.public_key.public_bytes_raw() == PUBLIC.public_bytes_raw()
    assert header.encode() == out.getvalue().splitlines(keepends=True)[0]
    with pytest.raises(AuditMalformedError, match="key_id does not match"):
        parse_export_header(header.encode().replace(header.key_id.encode(), b"f" * 16))
