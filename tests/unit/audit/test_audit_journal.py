"""The on-disk journal: append, read, cursors, recovery, cap, segments, exclusive use."""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.audit.errors import JournalCorrupt, JournalError, JournalFull, RecordError
from gateway.audit.journal import Journal
from gateway.audit.record import check_version


def opened(
    directory: Path,
    cursors: Sequence[str] = ("arr",),
    *,
    max_bytes: int = 1 << 20,
    segment_bytes: int = 4 << 20,
    reserve_bytes: int = 256 << 10,
) -> Journal:
    journal = Journal(
        directory,
        cursors=cursors,
        max_bytes=max_bytes,
        segment_bytes=segment_bytes,
        reserve_bytes=reserve_bytes,
    )
    journal.open()
    return journal


def segments(directory: Path) -> list[int]:
    return sorted(int(p.name.split(".")[0]) for p in directory.glob("*.seg"))


def legacy_directory(directory: Path, frames: Sequence[bytes], committed: int | None) -> None:
    """What a release before record versions left: one segment, a ``committed`` file."""
    directory.mkdir(parents=True)
    data = b"".join(struct.pack(">II", len(f), zlib.crc32(f)) + f for f in frames)
    (directory / f"{0:020d}.seg").write_bytes(data)
    if committed is not None:
        (directory / "committed").write_text(f"{committed}\n")


def test_append_read_advance_and_reopen(tmp_path: Path) -> None:
    journal = opened(tmp_path)
    ends = [journal.append(f"message {i}".encode()) for i in range(5)]
    records = journal.read(0, max_bytes=1 << 20, max_records=3)
    assert [r.payload for r in records] == [b"message 0", b"message 1", b"message 2"]
    assert [r.end for r in records] == ends[:3]
    journal.advance("arr", records[-1].end)
    assert journal.pending_records == 2
    journal.close()

    again = opened(tmp_path)
    assert again.cursor("arr") == ends[2]
    assert again.pending_records == 2
    rest = again.read(again.cursor("arr"), max_bytes=1 << 20, max_records=10)
    assert [r.payload for r in rest] == [b"message 3", b"message 4"]
    again.close()


def test_each_cursor_is_kept_on_its_own_across_a_restart(tmp_path: Path) -> None:
    journal = opened(tmp_path, cursors=("arr", "siem"))
    ends = [journal.append(b"m%d" % i) for i in range(4)]
    journal.advance("siem", ends[2])
    journal.advance("arr", ends[0])
    assert (journal.pending_records_of("arr"), journal.pending_records_of("siem")) == (3, 1)
    assert journal.pending_bytes_of("siem") == ends[3] - ends[2]
    journal.sync()  # the group-commit thread persists cursors; a SIGKILL now keeps them
    assert (tmp_path / "cursors" / "siem").read_text().strip() == str(ends[2])
    assert (tmp_path / "cursors" / "arr").read_text().strip() == str(ends[0])
    journal.close()

    again = opened(tmp_path, cursors=("arr", "siem"))
    assert (again.cursor("arr"), again.cursor("siem")) == (ends[0], ends[2])
    assert again.pending_records == 3  # the slowest destination's backlog
    again.close()


def test_segments_are_deleted_only_when_every_cursor_passed_them(tmp_path: Path) -> None:
    journal = opened(tmp_path, cursors=("arr", "siem"), segment_bytes=100)
    for i in range(10):
        journal.append(bytes([65 + i]) * 40)
    # 48-byte records, two per segment: segments start at 0, 96, 192, 288, 384.
    assert segments(tmp_path) == [0, 96, 192, 288, 384]
    records = journal.read(0, max_bytes=1 << 20, max_records=100)
    journal.advance("siem", journal.end)
    journal.sync()
    assert segments(tmp_path) == [0, 96, 192, 288, 384]  # arr has sent nothing yet
    journal.advance("arr", records[6].end)  # 336
    journal.sync()
    assert segments(tmp_path) == [288, 384]
    rest = journal.read(journal.cursor("arr"), max_bytes=1 << 20, max_records=100)
    assert [r.payload[:1] for r in rest] == [b"H", b"I", b"J"]
    journal.close()
    again = opened(tmp_path, cursors=("arr", "siem"), segment_bytes=100)
    assert (again.pending_records_of("arr"), again.pending_records_of("siem")) == (3, 0)
    again.close()


def test_the_cap_applies_to_the_backlog_of_the_slowest_destination(tmp_path: Path) -> None:
    journal = opened(tmp_path, cursors=("arr", "siem"), max_bytes=200, reserve_bytes=60)
    first = journal.append(b"x" * 80)
    journal.append(b"x" * 80)
    journal.advance("siem", journal.end)  # siem keeps up; arr is down
    with pytest.raises(JournalFull):
        journal.append(b"y" * 40)
    assert journal.pending_bytes == journal.pending_bytes_of("arr") == journal.end
    journal.append(b"alert" * 5, reserved=True)  # the reserve admits the cap alert
    journal.advance("arr", first)
    journal.append(b"y" * 40)
    journal.close()


def test_a_new_destination_starts_at_the_oldest_record_still_journalled(tmp_path: Path) -> None:
    journal = opened(tmp_path, segment_bytes=100)
    for i in range(6):
        journal.append(bytes([65 + i]) * 40)
    journal.advance("arr", journal.end)
    journal.sync()
    oldest = segments(tmp_path)[0]
    journal.close()
    again = opened(tmp_path, cursors=("arr", "fhir"), segment_bytes=100)
    assert again.cursor("fhir") == oldest
    assert again.cursor("arr") == again.end
    again.close()


def test_cursors_of_removed_destinations_are_ignored(tmp_path: Path) -> None:
    journal = opened(tmp_path, cursors=("arr", "old"), segment_bytes=100)
    for i in range(6):
        journal.append(bytes([65 + i]) * 40)
    journal.close()
    again = opened(tmp_path, cursors=("arr",), segment_bytes=100)
    again.advance("arr", again.end)
    again.sync()  # "old" no longer pins the segments
    assert segments(tmp_path) == [192]
    again.close()


def test_a_legacy_committed_offset_becomes_every_cursor(tmp_path: Path) -> None:
    frames = [b"<85>1 frame %d" % i for i in range(3)]
    legacy_directory(tmp_path / "j", frames, committed=8 + len(frames[0]))
    journal = opened(tmp_path / "j", cursors=("tls", "siem"))
    assert journal.cursor("tls") == journal.cursor("siem") == 8 + len(frames[0])
    assert [
        r.payload for r in journal.read(journal.cursor("tls"), max_bytes=999, max_records=9)
    ] == frames[1:]
    assert not (tmp_path / "j" / "committed").exists()  # migrated once, to cursors/
    assert sorted(p.name for p in (tmp_path / "j" / "cursors").iterdir()) == ["siem", "tls"]
    journal.close()


def test_a_record_of_an_unknown_version_refuses_the_journal(tmp_path: Path) -> None:
    legacy_directory(tmp_path / "j", [b'{"v":1,"x":1}', b'{"v":9,"event":"from the future"}'], None)
    journal = Journal(tmp_path / "j", cursors=("arr",), max_bytes=1 << 20, check=check_version)
    with pytest.raises(RecordError, match="version 9") as caught:
        journal.open()
    assert caught.value.version == 9
    assert not journal.is_open
    # Nothing was changed or lost: the records are still there for a release that reads them.
    plain = opened(tmp_path / "j")
    assert len(plain.read(0, max_bytes=1 << 20, max_records=9)) == 2
    plain.close()


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


def test_a_cursor_inside_a_record_moves_to_the_next_boundary(tmp_path: Path) -> None:
    journal = opened(tmp_path)
    first = journal.append(b"a" * 10)
    second = journal.append(b"b" * 10)
    journal.close()
    (tmp_path / "cursors" / "arr").write_text(f"{first + 3}\n")
    again = opened(tmp_path)
    assert again.cursor("arr") == second
    again.close()


def test_group_commit_is_one_fdatasync_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = opened(tmp_path, segment_bytes=64 * 1024)
    calls: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    for _ in range(500):
        journal.append(b"r" * 100)
    assert journal.sync() == 1
    assert len(calls) == 1
    assert journal.sync() == 0  # nothing new: no disk flush at all
    journal.close()


def test_readers_in_other_threads_see_whole_records_while_appends_go_on(tmp_path: Path) -> None:
    journal = opened(tmp_path, segment_bytes=4096)
    count = 3000
    failures: list[BaseException] = []
    done = threading.Event()

    def read_all() -> None:
        reader = journal.reader()
        offset, seen = 0, 0
        try:
            while seen < count:
                for record in reader.read(offset, max_bytes=8192, max_records=64):
                    assert record.payload == b"%06d" % seen * 10
                    seen += 1
                    offset = record.end
        except BaseException as exc:
            failures.append(exc)
        finally:
            reader.close()
            done.set()

    thread = threading.Thread(target=read_all)
    thread.start()
    for n in range(count):
        journal.append(b"%06d" % n * 10)
    assert done.wait(30)
    thread.join()
    assert failures == []
    journal.close()


def test_reading_before_the_oldest_segment_is_corrupt(tmp_path: Path) -> None:
    journal = opened(tmp_path, segment_bytes=100)
    for i in range(6):
        journal.append(bytes([65 + i]) * 40)
    journal.advance("arr", journal.end)
    journal.sync()
    with pytest.raises(JournalCorrupt):
        journal.read(0, max_bytes=100, max_records=1)
    journal.close()


def test_only_one_process_may_hold_the_journal(tmp_path: Path) -> None:
    journal = opened(tmp_path)
    second = Journal(tmp_path, cursors=("arr",), max_bytes=1 << 20)
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
    journal = Journal(tmp_path, cursors=("arr",), max_bytes=1024)
    with pytest.raises(JournalError, match="not open"):
        journal.append(b"x")


@pytest.mark.parametrize("names", [(), ("a", "a"), ("../x",), ("UPPER",)])
def test_cursor_names_are_unique_file_names(tmp_path: Path, names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="cursor"):
        Journal(tmp_path, cursors=names, max_bytes=1024)


def test_cursors_advance_from_the_senders_thread_while_the_owner_appends(tmp_path: Path) -> None:
    journal = opened(tmp_path, cursors=("arr", "siem"))
    ends: list[int] = []
    done = threading.Event()

    def sender() -> None:  # what the senders' thread does: follow the end, confirm
        confirmed = 0
        while not done.is_set() or confirmed < len(ends):
            if confirmed < len(ends):
                confirmed = len(ends)
                journal.advance("arr", ends[confirmed - 1])
                journal.advance("siem", ends[confirmed // 2 - 1] if confirmed > 1 else 0)
                assert journal.pending_records_of("arr") >= 0

    thread = threading.Thread(target=sender)
    thread.start()
    for n in range(5000):
        ends.append(journal.append(b"record %d" % n))
        assert journal.pending_records >= 0
    done.set()
    thread.join()
    assert journal.cursor("arr") == journal.end
    assert journal.pending_records_of("arr") == 0
    assert journal.pending_records == journal.pending_records_of("siem") == 5000 - 2500
    journal.close()
