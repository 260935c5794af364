"""AuditLog: group commit, chain continuity across instances and processes, recovery, reading."""

from __future__ import annotations

import errno
import hashlib
import itertools
import multiprocessing
import os
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from gatepass.audit import AuditLog, AuditMalformedError, verify_directory
from gatepass.audit.checkpoint import encode_checkpoint, parse_checkpoint, sign_checkpoint, verify_checkpoint
from gatepass.errors import AuditWriteError

from .helpers import FakeClock, event
from .procs import append_worker

OpenLog = Callable[..., AuditLog]
SECRET_VALUE = "sk-live-do-not-print-me"


def checkpoint_seqs(directory: Path) -> list[int]:
    lines = (directory / "checkpoints.jsonl").read_bytes().splitlines()
    return [parse_checkpoint(line).seq for line in lines]


def assert_valid(directory: Path, key: Ed25519PrivateKey, records: int) -> None:
    report = verify_directory(directory, key.public_key())
    assert report.problem is None
    assert report.records == records == report.last_seq


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_folder_is_0700_and_files_0600_whatever_the_umask(log_dir: Path, open_log: OpenLog, umask: int) -> None:
    old = os.umask(umask)
    try:
        open_log().append([event()])
    finally:
        os.umask(old)
    assert mode(log_dir) == 0o700
    for name in ("audit.jsonl", "checkpoints.jsonl", "audit.lock"):
        assert mode(log_dir / name) == 0o600, name


def test_one_write_and_one_fsync_per_batch(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log()
    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        writes.append(fd)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    before = log.fsync_count
    records = log.append([event(i) for i in range(100)])
    assert log.fsync_count == before + 1
    assert len(writes) == 1
    assert [r.seq for r in records] == list(range(1, 101))
    assert log.append([]) == []
    assert log.fsync_count == before + 1


def test_a_batch_that_reaches_the_cadence_adds_exactly_one_checkpoint_fsync(log_dir: Path, open_log: OpenLog) -> None:
    log = open_log(checkpoint_every=100)
    before = log.fsync_count
    log.append([event(i) for i in range(100)])
    assert log.fsync_count == before + 2  # the batch, then the checkpoint
    assert checkpoint_seqs(log_dir) == [100]


def test_seq_and_chain_continue_across_appends_and_reopening(
    log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog
) -> None:
    log = open_log()
    first = log.append([event(1), event(2), event(3)])
    second = log.append([event(4)])
    log.close()
    third = open_log().append([event(5), event(6)])
    records = [*first, *second, *third]
    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0].prev == "0" * 64
    for before, after in itertools.pairwise(records):
        assert after.prev == before.hash
    assert list(open_log().iter_records()) == records
    assert_valid(log_dir, key, 6)


def test_two_instances_on_one_folder_keep_one_chain(log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog) -> None:
    a, b = open_log(checkpoint_every=7), open_log(checkpoint_every=5)
    expected = 0
    for round_ in range(20):
        for log, size in ((a, round_ % 3 + 1), (b, round_ % 4 + 1)):
            records = log.append([event(round_) for _ in range(size)])
            assert [r.seq for r in records] == list(range(expected + 1, expected + size + 1))
            expected += size
    a.close()
    b.close()
    seqs = checkpoint_seqs(log_dir)
    assert seqs == sorted(set(seqs))  # never twice for one seq, always increasing
    assert_valid(log_dir, key, expected)


def test_two_processes_appending_at_once_keep_one_valid_chain(log_dir: Path, key: Ed25519PrivateKey) -> None:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    workers = [ctx.Process(target=append_worker, args=(str(log_dir), raw, start, n, 60, 3)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert_valid(log_dir, key, 2 * 60 * 3)
    actors = [r.actor for r in AuditLog(log_dir, key).iter_records()]
    assert actors.count("worker-0") == actors.count("worker-1") == 180
    assert sum(a != b for a, b in itertools.pairwise(actors)) >= 2  # the batches did interleave
    seqs = checkpoint_seqs(log_dir)
    assert seqs == sorted(set(seqs)) and seqs[-1] == 360


def test_torn_last_line_is_moved_aside_and_recorded(
    log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog, clock: FakeClock
) -> None:
    log = open_log()
    log.append([event(1), event(2), event(3)])
    log.close()
    torn = b'{"action":"request","actor":"acme-bot-dev","decision":"all'
    with open(log_dir / "audit.jsonl", "ab") as file:
        file.write(torn)
    report = verify_directory(log_dir, key.public_key())
    assert report.ok and report.records == 3
    assert any("unfinished write" in note for note in report.notes)

    clock.advance(1)
    records = open_log().append([event(4)])
    assert [r.seq for r in records] == [5]
    recovered = list(open_log().iter_records())[3]
    assert (recovered.seq, recovered.action, recovered.target) == (4, "audit.recovered", "audit.jsonl")
    assert recovered.meta["bytes"] == len(torn)
    name = recovered.meta["file"]
    assert name == "audit.torn-20250131T120001.000000Z"
    assert isinstance(name, str)
    assert (log_dir / name).read_bytes() == torn
    assert mode(log_dir / name) == 0o600
    assert (log_dir / "audit.jsonl").read_bytes().endswith(b"\n")
    assert_valid(log_dir, key, 5)


def test_a_torn_first_line_leaves_a_chain_starting_with_the_recovery(
    log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog
) -> None:
    log = open_log()
    (log_dir / "audit.jsonl").write_bytes(b'{"act')  # the very first write was cut short
    records = log.append([event(1)])  # the same instance notices the file changed
    assert records[0].seq == 2
    first = next(iter(log.iter_records()))
    assert (first.seq, first.action, first.meta["bytes"]) == (1, "audit.recovered", 5)
    assert_valid(log_dir, key, 2)


def test_torn_checkpoint_line_is_moved_aside_and_recorded(
    log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog
) -> None:
    log = open_log()
    log.append([event(1)])
    log.checkpoint()
    with open(log_dir / "checkpoints.jsonl", "ab") as file:
        file.write(b'{"hash":"ab')
    log.append([event(2)])
    assert log.checkpoint() is not None
    actions = [r.action for r in log.iter_records()]
    assert actions == ["agent.create", "agent.create", "audit.recovered"]
    assert len(list(log_dir.glob("checkpoints.torn-*"))) == 1
    assert checkpoint_seqs(log_dir) == [1, 3]
    assert_valid(log_dir, key, 3)


def test_checkpoint_cadence_by_count(log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog) -> None:
    log = open_log(checkpoint_every=10)
    for i in range(25):
        log.append([event(i)])
    assert checkpoint_seqs(log_dir) == [10, 20]
    log.append([event(i) for i in range(15)])  # one batch crossing the line: checkpointed after it
    assert checkpoint_seqs(log_dir) == [10, 20, 40]
    log.append([event(41)])
    log.close()
    assert checkpoint_seqs(log_dir) == [10, 20, 40, 41]
    assert_valid(log_dir, key, 41)


def test_checkpoint_cadence_by_time(log_dir: Path, open_log: OpenLog, clock: FakeClock) -> None:
    log = open_log(checkpoint_seconds=5)
    log.append([event(1)])
    clock.advance(3)
    log.append([event(2)])
    assert checkpoint_seqs(log_dir) == []
    clock.advance(3)
    log.append([event(3)])
    assert checkpoint_seqs(log_dir) == [3]
    clock.advance(4.9)
    log.append([event(4)])
    clock.advance(0.1)
    log.append([event(5)])
    assert checkpoint_seqs(log_dir) == [3, 5]


def test_close_and_checkpoint_never_sign_one_seq_twice(
    log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog
) -> None:
    log = open_log()
    log.append([event(1), event(2), event(3)])
    checkpoint = log.checkpoint()
    assert checkpoint is not None and checkpoint.seq == 3
    assert log.checkpoint() is None
    log.close()
    log.close()
    open_log().close()  # appended nothing: writes nothing
    assert open_log().checkpoint() is None
    assert checkpoint_seqs(log_dir) == [3]
    assert verify_checkpoint(checkpoint, key.public_key())
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert checkpoint.key_id == hashlib.sha256(raw).hexdigest()[:16]
    with pytest.raises(AuditWriteError, match="closed"):
        log.append([event()])


def test_close_checkpoints_what_it_appended(log_dir: Path, open_log: OpenLog) -> None:
    log = open_log()
    log.append([event(1), event(2)])
    assert checkpoint_seqs(log_dir) == []
    log.close()
    assert checkpoint_seqs(log_dir) == [2]


def _fail_mid_write(monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def half_then_fail(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_fail)


def _fail_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)

    monkeypatch.setattr(os, "fdatasync", failing_fsync, raising=False)  # the log syncs its data with it


@pytest.mark.parametrize("failure", [_fail_mid_write, _fail_fsync])
def test_a_failed_write_leaves_the_file_as_it_was(
    log_dir: Path,
    key: Ed25519PrivateKey,
    open_log: OpenLog,
    monkeypatch: pytest.MonkeyPatch,
    failure: Callable[[pytest.MonkeyPatch], None],
) -> None:
    log = open_log()
    log.append([event(i) for i in range(5)])
    before = (log_dir / "audit.jsonl").read_bytes()
    with monkeypatch.context() as patch:
        failure(patch)
        with pytest.raises(AuditWriteError) as info:
            log.append([event(i, token=SECRET_VALUE) for i in range(50)])
    message = str(info.value)
    assert "\n" not in message and SECRET_VALUE not in message
    assert str(log_dir) in message and "retry" in message
    assert (log_dir / "audit.jsonl").read_bytes() == before
    assert [r.seq for r in log.append([event(6)])] == [6]
    assert_valid(log_dir, key, 6)


def test_reading_a_damaged_line_names_its_line_number(log_dir: Path, open_log: OpenLog) -> None:
    log = open_log()
    log.append([event(i) for i in range(3)])
    lines = (log_dir / "audit.jsonl").read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"seq":2', b'"seq":"2"')
    (log_dir / "audit.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(AuditMalformedError, match="line 2") as info:
        list(log.iter_records())
    assert info.value.lineno == 2


def test_appending_after_a_damaged_last_line_refuses(log_dir: Path, open_log: OpenLog) -> None:
    log = open_log()
    log.append([event(1)])
    with open(log_dir / "audit.jsonl", "ab") as file:
        file.write(b"garbage\n")
    with pytest.raises(AuditWriteError, match="cannot continue the audit chain"):
        log.append([event(2)])
    with pytest.raises(AuditWriteError, match="cannot continue the audit chain"):
        log.close()  # nor sign a checkpoint of it; the files are released all the same
    with pytest.raises(AuditWriteError, match="closed"):
        log.checkpoint()


def test_bad_cadence_is_refused(log_dir: Path, key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="checkpoint_every"):
        AuditLog(log_dir, key, checkpoint_every=0)


def test_a_forged_last_checkpoint_does_not_stop_checkpoints(
    log_dir: Path, key: Ed25519PrivateKey, open_log: OpenLog
) -> None:
    log = open_log()
    log.append([event(1)])
    log.checkpoint()
    forged = replace(sign_checkpoint(key, 10**6, "ab" * 32, "2025-01-31T12:00:00.000000Z"), sig="AAAA")
    with open(log_dir / "checkpoints.jsonl", "ab") as file:
        file.write(encode_checkpoint(forged))
    log.append([event(2)])
    log.close()
    assert checkpoint_seqs(log_dir) == [1, 10**6, 2]
    report = verify_directory(log_dir, key.public_key())
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seq, report.problem.line) == ("bad_signature", 10**6, 2)
    assert report.last_checkpoint_seq == 2


def test_a_rotated_signing_key_continues_the_log(log_dir: Path, key: Ed25519PrivateKey, clock: FakeClock) -> None:
    with AuditLog(log_dir, key, clock=clock) as old:
        old.append([event(1), event(2)])
    new_key = Ed25519PrivateKey.generate()
    with AuditLog(log_dir, new_key, clock=clock) as new:
        assert new.checkpoint() is None  # record 2 is already covered, by the old key
        new.append([event(3)])
    assert checkpoint_seqs(log_dir) == [2, 3]
    assert verify_directory(log_dir, [key.public_key(), new_key.public_key()]).ok
    report = verify_directory(log_dir, key.public_key())
    assert report.problem is not None and (report.problem.kind, report.problem.seq) == ("unknown_key", 3)
