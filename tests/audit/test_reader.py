"""Reading a log folder without its key: forward, and backward from the end by blocks."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from gatepass.audit import AuditLog, AuditRecord, _files, iter_directory, tail_directory

from .helpers import event

OpenLog = Callable[..., AuditLog]


def test_no_log_yet_reads_as_empty(tmp_path: Path) -> None:
    assert tail_directory(tmp_path / "none", 10) == []
    assert list(iter_directory(tmp_path / "none")) == []


def test_readers_skip_an_unfinished_last_line(log_dir: Path, open_log: OpenLog) -> None:
    open_log().append([event(1), event(2)])
    with open(log_dir / "audit.jsonl", "ab") as file:
        file.write(b'{"action":"req')
    assert [r.seq for r in tail_directory(log_dir, 5)] == [1, 2]
    assert [r.seq for r in iter_directory(log_dir)] == [1, 2]


def test_directory_readers_match_the_log(log_dir: Path, open_log: OpenLog) -> None:
    log = open_log()
    log.append([event(i) for i in range(30)])
    assert tail_directory(log_dir, 7) == log.tail(7)
    assert list(iter_directory(log_dir)) == list(log.iter_records())


def test_tail_returns_the_last_matches_in_order(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log()
    log.append([event(i, deny=i % 3 == 0) for i in range(1, 51)])

    def denied(record: AuditRecord) -> bool:
        return record.meta["deny"] is True

    for block in (_files.BLOCK, 7, 300):
        monkeypatch.setattr(_files, "BLOCK", block)
        assert [r.seq for r in log.tail(5)] == [46, 47, 48, 49, 50]
        assert [r.seq for r in log.tail(3, denied)] == [42, 45, 48]
        assert [r.seq for r in log.tail(1000)] == list(range(1, 51))
        assert log.tail(0) == []
        assert [r.seq for r in log.iter_records()] == list(range(1, 51))


def test_tail_reads_from_the_end_only(open_log: OpenLog, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log()
    log.append([event(i, pad="x" * 200) for i in range(4000)])  # about 1.2 MB
    size = (log.directory / "audit.jsonl").stat().st_size
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        data = real_pread(fd, length, offset)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", counting_pread)
    assert [r.seq for r in log.tail(10)] == list(range(3991, 4001))
    assert sum(read) <= 3 * _files.BLOCK < size / 4
