"""The journal's segment files and reading them (layout: :mod:`gateway.audit.journal`).

A reader keeps its own descriptors, so it can run in a worker thread while the journal's
owner appends: it reads only below the end of the snapshot it takes per call, which is
written whole (the owner publishes the end after its ``write(2)`` returned), and a segment
it has open stays readable after the journal deletes it (``unlink(2)`` semantics).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.audit.errors import JournalCorrupt, JournalError

__all__ = ["HEADER", "MAX_RECORD", "SUFFIX", "JournalReader", "Record", "segment_path"]

HEADER = struct.Struct(">II")  # payload length, CRC-32 of the payload
SUFFIX = ".seg"
MAX_RECORD = 16 * 1024 * 1024


def segment_path(directory: Path, start: int) -> Path:
    return directory / f"{start:020d}{SUFFIX}"


@dataclass(frozen=True, slots=True)
class Record:
    """One journalled record: its payload and its logical ``[start, end)`` range."""

    start: int
    end: int
    payload: bytes


class JournalReader:
    """Reads records of one journal; one thread at a time, any thread."""

    def __init__(
        self, directory: Path, snapshot: Callable[[], tuple[tuple[int, ...], int]]
    ) -> None:
        """``snapshot`` returns the segment starts and the journal end, consistently."""
        self._directory = directory
        self._snapshot = snapshot
        self._fds: dict[int, int] = {}

    def read(self, offset: int, *, max_bytes: int, max_records: int) -> list[Record]:
        """Records starting at ``offset`` (a record boundary), up to ``max_records`` and about
        ``max_bytes`` of payload (at least one record when any is there). Raises
        :class:`JournalCorrupt` when ``offset`` is no longer journalled or a record is damaged,
        :class:`JournalError` when a segment cannot be read.
        """
        try:
            return self._read(offset, max_bytes, max_records)
        except OSError as exc:
            raise JournalError(f"cannot read the audit journal: {exc}", exc.errno) from exc

    def close(self) -> None:
        for fd in self._fds.values():
            _close(fd)
        self._fds.clear()

    def _read(self, offset: int, max_bytes: int, max_records: int) -> list[Record]:
        starts, end = self._snapshot()
        for start in [start for start in self._fds if start not in starts]:
            _close(self._fds.pop(start))  # deleted by the journal: done with
        out: list[Record] = []
        total = 0
        while offset < end and len(out) < max_records and total < max_bytes:
            index = bisect.bisect_right(starts, offset) - 1
            if index < 0:
                raise JournalCorrupt(f"offset {offset} is before the oldest segment")
            start = starts[index]
            segment_end = starts[index + 1] if index + 1 < len(starts) else end
            if offset >= segment_end:
                offset = segment_end
                continue
            fd = self._open(start)
            # One pread for as many records as the batch may hold, not two per record.
            want = min(segment_end - offset, max(max_bytes - total, 0) + HEADER.size)
            window = os.pread(fd, want, offset - start)
            taken = _split(window, offset, out, max_records)
            if not taken:  # the next record is larger than the window: read it alone
                out.append(_single(fd, start, offset))
                taken = out[-1].end - offset
            total += taken
            offset += taken
        return out

    def _open(self, start: int) -> int:
        fd = self._fds.get(start)
        if fd is None:
            try:
                fd = os.open(segment_path(self._directory, start), os.O_RDONLY)
            except FileNotFoundError:
                raise JournalCorrupt(f"journal segment {start} is gone") from None
            self._fds[start] = fd
        return fd


def _split(window: bytes, base: int, out: list[Record], max_records: int) -> int:
    """Append the whole records at the start of ``window`` (read at offset ``base``) to
    ``out``, up to ``max_records`` in all; returns how many bytes they took."""
    position = 0
    while position + HEADER.size <= len(window) and len(out) < max_records:
        length, crc = HEADER.unpack_from(window, position)
        stop = position + HEADER.size + length
        if stop > len(window):
            break
        payload = window[position + HEADER.size : stop]
        if zlib.crc32(payload) != crc:
            raise JournalCorrupt(f"damaged record at {base + position}")
        out.append(Record(base + position, base + stop, payload))
        position = stop
    return position


def _single(fd: int, start: int, offset: int) -> Record:
    header = os.pread(fd, HEADER.size, offset - start)
    if len(header) < HEADER.size:
        raise JournalCorrupt(f"truncated record header at {offset}")
    length, crc = HEADER.unpack(header)
    payload = os.pread(fd, length, offset - start + HEADER.size)
    if len(payload) != length or zlib.crc32(payload) != crc:
        raise JournalCorrupt(f"damaged record at {offset}")
    return Record(offset, offset + HEADER.size + length, payload)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
