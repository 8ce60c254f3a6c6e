"""The on-disk journal: append, read, commit, recovery, cap, segments, exclusive use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.audit.errors import JournalError, JournalFull
from gateway.audit.journal import Journal


def opened(directory: Path, **kwargs: int) -> Journal:
    journal = Journal(directory, **{"max_bytes": 1 << 20, **kwargs})
    journal.open()
    return journal


def test_append_read_commit_and_reopen(tmp_path: Path) -> None:
    journal = opened(tmp_path)
    ends = [journal.append(f"message {i}".encode()) for i in range(5)]
    records = journal.read(0, max_bytes=1 << 20, max_records=3)
    assert [r.payload for r in records] == [b"message 0", b"message 1", b"message 2"]
    assert [r.end for r in records] == ends[:3]
    journal.commit(records[-1].end)
    assert journal.pending_records == 2
    journal.close()

    again = opened(tmp_path)
    assert again.committed == ends[2]
    assert again.pending_records == 2
    rest = again.read(again.committed, max_bytes=1 << 20, max_records=10)
    assert [r.payload for r in rest] == [b"message 3", b"message 4"]
    again.close()


def test_a_torn_tail_is_cut_off(tmp_path: Path) -> None:
    journal = opened(tmp_path)
    journal.append(b"whole")
    end = journal.append(b"also whole")
    journal.close()
    segment = next(tmp_path.glob("*.seg"))
    with segment.open("ab") as handle:
        handle.write(b"\x00\x00\x01\x00garbage")  # a header promising more than is there
    again = opened(tmp_path)
    assert again.end == end
    assert segment.stat().st_size == end
    assert [r.payload for r in again.read(0, max_bytes=1 << 20, max_records=9)] == [
        b"whole",
        b"also whole",
    ]
    again.append(b"after")
    assert again.pending_records == 3
    again.close()


def test_cap_refuses_and_the_reserve_admits_alerts(tmp_path: Path) -> None:
    journal = opened(tmp_path, max_bytes=100, reserve_bytes=60)
    journal.append(b"x" * 80)
    with pytest.raises(JournalFull):
        journal.append(b"y" * 20)
    journal.append(b"alert" * 5, reserved=True)
    assert journal.pending_records == 2
    journal.commit(journal.end)
    journal.append(b"y" * 20)
    journal.close()


def test_segments_roll_and_sent_ones_are_deleted(tmp_path: Path) -> None:
    journal = opened(tmp_path, segment_bytes=100)
    for i in range(10):
        journal.append(bytes([65 + i]) * 40)
    assert len(list(tmp_path.glob("*.seg"))) == 5
    records = journal.read(0, max_bytes=1 << 20, max_records=100)
    assert len(records) == 10
    journal.commit(records[6].end)
    # 48-byte records, two per segment: segments start at 0, 96, 192, 288, 384; the
    # commit at 336 leaves only the segments still holding unsent records.
    names = sorted(int(p.name.split(".")[0]) for p in tmp_path.glob("*.seg"))
    assert records[6].end == 336
    assert names == [288, 384]
    rest = journal.read(journal.committed, max_bytes=1 << 20, max_records=100)
    assert [r.payload[:1] for r in rest] == [b"H", b"I", b"J"]
    journal.close()
    again = opened(tmp_path, segment_bytes=100)
    assert again.pending_records == 3
    again.close()


def test_only_one_process_may_hold_the_journal(tmp_path: Path) -> None:
    journal = opened(tmp_path)
    second = Journal(tmp_path, max_bytes=1 << 20)
    with pytest.raises(JournalError, match="another process"):
        second.open()
    journal.close()
    second.open()
    second.close()


def test_sync_after_roll_closes_the_old_segment(tmp_path: Path) -> None:
    journal = opened(tmp_path, segment_bytes=64)
    for _ in range(4):
        journal.append(b"z" * 40)
    before = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    journal.sync()
    after = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    assert after < before
    journal.close()


def test_append_to_a_closed_journal_fails(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1024)
    with pytest.raises(JournalError, match="not open"):
        journal.append(b"x")
