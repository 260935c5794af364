"""verify: every kind of tampering is found, with the first bad seq; untouched logs pass."""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from gatepass.audit import (
    GENESIS_HASH,
    AuditEvent,
    AuditLog,
    AuditRecord,
    ProblemKind,
    VerifyReport,
    encode_record,
    verify,
    verify_directory,
)
from gatepass.audit.checkpoint import Checkpoint, encode_checkpoint, sign_checkpoint
from gatepass.audit.record import make_record
from gatepass.errors import AuditError, AuditTamperedError

from .helpers import event, make_dir

KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()
FIELDS = ("seq", "ts", "actor", "action", "target", "decision", "reason", "meta", "prev", "hash")


def ts(n: int) -> str:
    return f"2025-01-31T12:{n // 60 % 60:02d}:{n % 60:02d}.{n:06d}Z"


@dataclass
class Log:
    """An in-memory log: records and checkpoints, and their lines."""

    records: list[AuditRecord]
    checkpoints: list[Checkpoint]

    @property
    def lines(self) -> list[bytes]:
        return [encode_record(r) for r in self.records]

    @property
    def cp_lines(self) -> list[bytes]:
        return [encode_checkpoint(c) for c in self.checkpoints]

    def verify(self, lines: list[bytes] | None = None, cp_lines: list[bytes] | None = None) -> VerifyReport:
        return verify(self.lines if lines is None else lines, self.cp_lines if cp_lines is None else cp_lines, PUBLIC)


def build(n: int, cp_seqs: set[int]) -> Log:
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        records.append(make_record(seq, ts(seq), event(seq, deny=seq % 2 == 0), prev))
        prev = records[-1].hash
    checkpoints = [sign_checkpoint(KEY, s, records[s - 1].hash, ts(s)) for s in sorted(cp_seqs)]
    return Log(records, checkpoints)


@st.composite
def logs(draw: st.DrawFn, min_size: int = 1, min_checkpoints: int = 0, end_checkpoint: bool = False) -> Log:
    n = draw(st.integers(min_value=max(min_size, min_checkpoints), max_value=25))
    cps = draw(st.sets(st.integers(min_value=1, max_value=n), min_size=min_checkpoints)) if n else set()
    if end_checkpoint and n:
        cps.add(n)
    return build(n, cps)


def expect(report: VerifyReport, kind: ProblemKind, seq: int | None) -> None:
    assert not report.ok
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq) == (kind, seq), report.problem.message
    assert "\n" not in report.problem.message


hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
texts = st.text(max_size=12)
new_values: dict[str, st.SearchStrategy[object]] = {
    "seq": st.integers(min_value=1, max_value=10**6),
    "ts": st.integers(min_value=0, max_value=10**5).map(ts),
    "actor": texts,
    "action": texts,
    "target": texts,
    "decision": texts,
    "reason": texts,
    "meta": st.dictionaries(texts, st.integers() | texts, max_size=3),
    "prev": hex64,
    "hash": hex64,
}


@given(log=logs(min_size=0))
def test_untouched_logs_verify(log: Log) -> None:
    report = log.verify()
    assert report.ok and report.problem is None
    assert (report.records, report.last_seq, report.checkpoints) == (
        len(log.records),
        len(log.records),
        len(log.checkpoints),
    )
    assert report.last_checkpoint_seq == max((c.seq for c in log.checkpoints), default=0)
    report.raise_for_problem()


@given(log=logs(), data=st.data())
def test_editing_any_field_of_any_record_is_found_at_that_record(log: Log, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=1, max_value=len(log.records)))
    name = data.draw(st.sampled_from(FIELDS))
    record = log.records[k - 1]
    value = data.draw(new_values[name].filter(lambda v: v != getattr(record, name)))
    lines = log.lines
    lines[k - 1] = encode_record(replace(record, **{name: value}))  # type: ignore[arg-type]
    expect(log.verify(lines), ProblemKind.EDITED, k)


@given(log=logs(), data=st.data())
def test_a_malformed_line_is_found_with_its_line_number(log: Log, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=1, max_value=len(log.records)))
    lines = log.lines
    damaged = [b"", b"{}", lines[k - 1][:-5], lines[k - 1].replace(b",", b", ")]
    lines[k - 1] = data.draw(st.sampled_from(damaged))
    report = log.verify(lines)
    expect(report, ProblemKind.MALFORMED, k)
    assert report.problem is not None and report.problem.line == k


@given(log=logs(end_checkpoint=True), data=st.data())
def test_deleting_any_record_is_found(log: Log, data: st.DataObject) -> None:
    n = len(log.records)
    k = data.draw(st.integers(min_value=1, max_value=n))
    lines = log.lines
    del lines[k - 1]
    # Deleting the last record is cutting the log short: the checkpoint of seq n reveals it.
    expect(log.verify(lines), ProblemKind.DELETED if k < n else ProblemKind.TRUNCATED, k)


@given(log=logs(), data=st.data())
def test_deleting_the_unsigned_last_record_cannot_be_seen(log: Log, data: st.DataObject) -> None:
    """The documented limit: what follows the last checkpoint can be cut off unnoticed."""
    n = len(log.records)
    if any(c.seq == n for c in log.checkpoints):
        return
    assert log.verify(log.lines[:-1]).ok


@given(log=logs(min_size=2), data=st.data())
def test_swapping_any_two_records_is_found_at_the_first(log: Log, data: st.DataObject) -> None:
    n = len(log.records)
    i = data.draw(st.integers(min_value=1, max_value=n - 1))
    j = data.draw(st.integers(min_value=i + 1, max_value=n))
    lines = log.lines
    lines[i - 1], lines[j - 1] = lines[j - 1], lines[i - 1]
    expect(log.verify(lines), ProblemKind.REORDERED, i)


@given(log=logs(min_size=2), data=st.data())
def test_moving_a_record_back_or_duplicating_it_is_reordering(log: Log, data: st.DataObject) -> None:
    n = len(log.records)
    k = data.draw(st.integers(min_value=1, max_value=n - 1))
    lines = log.lines
    lines.insert(k + 1, lines[k - 1])  # a copy of record k right after record k + 1
    expect(log.verify(lines), ProblemKind.REORDERED, k + 2)


@given(log=logs(min_checkpoints=1), data=st.data())
def test_truncating_at_or_before_the_last_checkpoint_is_found(log: Log, data: st.DataObject) -> None:
    last_cp = log.checkpoints[-1].seq
    t = data.draw(st.integers(min_value=0, max_value=last_cp - 1))  # records kept
    report = log.verify(log.lines[:t])
    expect(report, ProblemKind.TRUNCATED, t + 1)
    assert report.last_seq == t


@st.composite
def forgeries(draw: st.DrawFn, cp: Checkpoint) -> Checkpoint:
    how = draw(st.sampled_from(["hash", "seq", "ts", "sig", "other_key_same_id"]))
    if how == "hash":
        return replace(cp, hash=draw(hex64.filter(lambda h: h != cp.hash)))
    if how == "seq":
        return replace(cp, seq=draw(st.integers(min_value=1, max_value=10**6).filter(lambda s: s != cp.seq)))
    if how == "ts":
        other_ts = st.integers(min_value=0, max_value=10**5).map(ts).filter(lambda t: t != cp.ts)
        return replace(cp, ts=draw(other_ts))
    if how == "sig":
        sig = bytearray(base64.b64decode(cp.sig))
        sig[draw(st.integers(min_value=0, max_value=63))] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        return replace(cp, sig=base64.b64encode(bytes(sig)).decode())
    forged = sign_checkpoint(OTHER_KEY, cp.seq, cp.hash, cp.ts)
    return replace(forged, key_id=cp.key_id)


@given(log=logs(min_checkpoints=1), data=st.data())
def test_a_forged_or_edited_checkpoint_has_a_bad_signature(log: Log, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(log.checkpoints) - 1))
    forged = data.draw(forgeries(log.checkpoints[index]))
    cp_lines = log.cp_lines
    cp_lines[index] = encode_checkpoint(forged)
    report = log.verify(cp_lines=cp_lines)
    expect(report, ProblemKind.BAD_SIGNATURE, forged.seq)
    assert report.problem is not None and report.problem.line == index + 1


@given(log=logs(min_checkpoints=1), data=st.data())
def test_a_checkpoint_by_another_key_is_unknown_key(log: Log, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(log.checkpoints) - 1))
    cp = log.checkpoints[index]
    cp_lines = log.cp_lines
    cp_lines[index] = encode_checkpoint(sign_checkpoint(OTHER_KEY, cp.seq, cp.hash, cp.ts))
    expect(log.verify(cp_lines=cp_lines), ProblemKind.UNKNOWN_KEY, cp.seq)
    assert verify(log.lines, cp_lines, [PUBLIC, OTHER_KEY.public_key()]).ok  # both trusted: fine


@given(log=logs(min_checkpoints=2))
def test_checkpoints_out_of_order_are_reordered(log: Log) -> None:
    cp_lines = log.cp_lines
    cp_lines[0], cp_lines[1] = cp_lines[1], cp_lines[0]
    expect(log.verify(cp_lines=cp_lines), ProblemKind.REORDERED, log.checkpoints[0].seq)


@given(log=logs(), data=st.data())
def test_rewriting_the_chain_with_recomputed_hashes_is_caught_by_the_next_checkpoint(
    log: Log, data: st.DataObject
) -> None:
    n = len(log.records)
    k = data.draw(st.integers(min_value=1, max_value=n))
    records = log.records[: k - 1]
    prev = records[-1].hash if records else GENESIS_HASH
    for old in log.records[k - 1 :]:
        changed = AuditEvent(old.actor, old.action, old.target, "allow", "rewritten", old.meta)
        records.append(make_record(old.seq, old.ts, changed, prev))
        prev = records[-1].hash
    lines = [encode_record(r) for r in records]
    covering = [c.seq for c in log.checkpoints if c.seq >= k]
    if covering:
        expect(log.verify(lines), ProblemKind.CHECKPOINT_MISMATCH, covering[0])
    else:
        assert log.verify(lines).ok  # the documented limit: nothing signed covers these records


def test_a_recomputed_edit_that_does_not_chain_is_found_at_the_next_record() -> None:
    log = build(5, set())
    lines = log.lines
    edited = log.records[1]
    lines[1] = encode_record(make_record(2, edited.ts, replace(edited.event, decision="deny"), edited.prev))
    report = log.verify(lines)
    expect(report, ProblemKind.EDITED, 3)
    assert report.last_seq == 2


def test_the_first_problem_wins() -> None:
    log = build(10, {5, 10})
    lines = log.lines
    lines[6] = lines[6].replace(b'"decision":"ok"', b'"decision":"no"')  # edited at 7
    del lines[2]  # deleted at 3
    cp_lines = log.cp_lines
    cp_lines[1] = encode_checkpoint(replace(log.checkpoints[1], ts=ts(99)))  # bad signature at 10
    expect(log.verify(lines, cp_lines), ProblemKind.DELETED, 3)
    expect(log.verify(log.lines, cp_lines), ProblemKind.BAD_SIGNATURE, 10)


def test_max_unchecked_reports_records_past_the_last_checkpoint() -> None:
    log = build(30, {10})
    assert verify(log.lines, log.cp_lines, PUBLIC, max_unchecked=20).ok
    report = verify(log.lines, log.cp_lines, PUBLIC, max_unchecked=19)
    expect(report, ProblemKind.TRUNCATED, 11)


def test_raise_for_problem_raises_tampered() -> None:
    log = build(3, {3})
    with pytest.raises(AuditTamperedError, match="truncated"):
        log.verify(log.lines[:1]).raise_for_problem()


# -- directories ------------------------------------------------------------------------------


def test_directory_verifies(tmp_path: Path) -> None:
    report = verify_directory(make_dir(tmp_path, KEY), PUBLIC)
    assert report.ok and report.records == 12 and report.checkpoints == 3 and report.last_checkpoint_seq == 12


def test_deleted_checkpoints_file_is_truncation(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, KEY)
    (directory / "checkpoints.jsonl").unlink()
    report = verify_directory(directory, PUBLIC)
    expect(report, ProblemKind.TRUNCATED, 1)
    assert report.problem is not None and "checkpoints.jsonl is missing" in report.problem.message


def test_deleted_log_file_is_truncation(tmp_path: Path) -> None:
    directory = make_dir(tmp_path, KEY)
    (directory / "audit.jsonl").unlink()
    expect(verify_directory(directory, PUBLIC), ProblemKind.TRUNCATED, 1)


def test_empty_checkpoints_file_is_a_note(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    log = AuditLog(directory, KEY)
    log.append([event(1)])
    report = verify_directory(directory, PUBLIC)
    assert report.ok and any("no checkpoint yet" in note for note in report.notes)
    log.close()
    assert verify_directory(directory, PUBLIC).notes == ()


def test_no_log_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="no audit log"):
        verify_directory(tmp_path / "nowhere", PUBLIC)
