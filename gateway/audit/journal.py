"""The on-disk, append-only audit journal.

Every audit message is appended here before the exchange that caused it is over; the sender
reads from the committed offset, and moves the committed offset past what the repository has
confirmed. Offsets are logical byte positions that only grow, so a message keeps its place
across restarts.

Layout of the directory::

    00000000000000000000.seg   segments, named by the logical offset of their first byte
    00000000000004194391.seg
    committed                  the committed offset, decimal; replaced atomically
    lock                       flock(2)-ed by the one process using the journal

A record is ``length (u32 BE) · CRC-32 of payload (u32 BE) · payload``; records never span
segments. Durability contract:

* :meth:`Journal.append` is one ``write(2)`` to an ``O_APPEND`` file: once it returns the
  record survives the death of this process (SIGKILL included), because it is in the kernel.
* Surviving a power loss needs :meth:`Journal.sync` (``fdatasync``); the service calls it
  from a worker thread on a timer, so a burst of appends shares one sync (group commit) and
  the request path never waits for a disk flush.
* A record cut short by a power loss, or whose checksum fails, ends the readable journal:
  :meth:`Journal.open` truncates the last segment there.
* The committed offset is written without ``fsync``: losing an update means resending
  messages the repository already has (at-least-once), never skipping one.

The cap bounds the *unsent* bytes (``end - committed``); the disk holds at most one more
segment of already-sent records. ``reserved=True`` appends may use ``reserve_bytes`` beyond
the cap, so the Security Alert announcing that the cap was crossed still has room.
Not thread-safe except :meth:`Journal.sync`, which may run in another thread.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import fcntl
import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from gateway.audit.errors import JournalCorrupt, JournalError, JournalFull

__all__ = ["Journal", "Record"]

log = logging.getLogger("mado_gateway.audit.journal")

_HEADER = struct.Struct(">II")
_SUFFIX = ".seg"
_MAX_RECORD = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Record:
    """One journalled message: its payload and its logical ``[start, end)`` range."""

    start: int
    end: int
    payload: bytes


class Journal:
    """An append-only, segmented, checksummed journal with a committed offset."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int,
        segment_bytes: int = 4 * 1024 * 1024,
        reserve_bytes: int = 256 * 1024,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.reserve_bytes = reserve_bytes
        self._starts: list[int] = []  # segment start offsets, ascending
        self._read_fds: dict[int, int] = {}
        self._append_fd: int | None = None
        self._lock_fd: int | None = None
        self._active_size = 0
        self._end = 0
        self._committed = 0
        self._pending_ends: collections.deque[int] = collections.deque()
        self._sync_lock = threading.Lock()
        self._dirty: set[int] = set()
        self._retired: list[int] = []

    # -- state -------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._append_fd is not None

    @property
    def end(self) -> int:
        """Logical offset just past the last record."""
        return self._end

    @property
    def committed(self) -> int:
        """Logical offset up to which records are confirmed sent."""
        return self._committed

    @property
    def pending_bytes(self) -> int:
        return self._end - self._committed

    @property
    def pending_records(self) -> int:
        return len(self._pending_ends)

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Take the directory's lock, recover the segments and open the last one for append.

        Raises :class:`JournalError` when the directory cannot be used or another process
        holds the lock.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot open journal {self.directory}: {exc}", exc.errno) from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._close_fd(self._lock_fd)
            self._lock_fd = None
            raise JournalError(f"journal {self.directory} is used by another process") from exc
        try:
            self._recover()
        except OSError as exc:
            self.close()
            raise JournalError(
                f"cannot recover journal {self.directory}: {exc}", exc.errno
            ) from exc

    def close(self) -> None:
        """Sync and close every file; the journal can be opened again."""
        if self._append_fd is not None:
            with contextlib.suppress(OSError):
                self.sync()
            self._close_fd(self._append_fd)
            self._append_fd = None
        for fd in self._read_fds.values():
            self._close_fd(fd)
        self._read_fds.clear()
        if self._lock_fd is not None:
            self._close_fd(self._lock_fd)
            self._lock_fd = None

    # -- writing -----------------------------------------------------------------------

    def append(self, payload: bytes, *, reserved: bool = False) -> int:
        """Append one record and return its end offset.

        Raises :class:`JournalFull` when it would take the unsent bytes over the cap (plus
        the reserve when ``reserved``), :class:`JournalError` when the write fails; in both
        cases nothing was appended.
        """
        fd = self._append_fd
        if fd is None:
            raise JournalError("journal is not open")
        if len(payload) > _MAX_RECORD:
            raise JournalError("audit message too large for the journal")
        size = _HEADER.size + len(payload)
        limit = self.max_bytes + (self.reserve_bytes if reserved else 0)
        if self.pending_bytes + size > limit:
            raise JournalFull(f"audit journal holds {self.pending_bytes} unsent bytes")
        if self._active_size and self._active_size + size > self.segment_bytes:
            fd = self._roll()
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            written = os.write(fd, record)
        except OSError as exc:
            raise JournalError(f"cannot append to audit journal: {exc}", exc.errno) from exc
        if written != size:
            # A short write (disk full) leaves half a record; cut it off so the next append
            # starts on a boundary.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._active_size)
            raise JournalError("short write to audit journal (disk full?)")
        self._active_size += size
        self._end += size
        self._pending_ends.append(self._end)
        with self._sync_lock:
            self._dirty.add(fd)
        return self._end

    def sync(self) -> None:
        """``fdatasync`` every segment written since the last call. Safe from another thread."""
        with self._sync_lock:
            dirty, self._dirty = self._dirty, set()
            retired, self._retired = self._retired, []
        try:
            for fd in dirty:
                os.fdatasync(fd)
        finally:
            for fd in retired:
                self._close_fd(fd)

    # -- reading and committing --------------------------------------------------------

    def read(self, offset: int, *, max_bytes: int, max_records: int) -> list[Record]:
        """Records starting at ``offset`` (a record boundary), up to ``max_records`` and about
        ``max_bytes`` of payload (at least one record when any is there)."""
        out: list[Record] = []
        total = 0
        while offset < self._end and len(out) < max_records and total < max_bytes:
            index = bisect.bisect_right(self._starts, offset) - 1
            if index < 0:
                raise JournalCorrupt(f"offset {offset} is before the oldest segment")
            start = self._starts[index]
            segment_end = self._starts[index + 1] if index + 1 < len(self._starts) else self._end
            if offset >= segment_end:
                offset = segment_end
                continue
            fd = self._reader(start)
            header = os.pread(fd, _HEADER.size, offset - start)
            if len(header) < _HEADER.size:
                raise JournalCorrupt(f"truncated record header at {offset}")
            length, crc = _HEADER.unpack(header)
            payload = os.pread(fd, length, offset - start + _HEADER.size)
            if len(payload) != length or zlib.crc32(payload) != crc:
                raise JournalCorrupt(f"damaged record at {offset}")
            end = offset + _HEADER.size + length
            out.append(Record(offset, end, payload))
            total += length
            offset = end
        return out

    def commit(self, offset: int) -> None:
        """Mark everything before ``offset`` (a record end) sent, persist it, and delete the
        segments that hold nothing unsent. Raises :class:`JournalError` on a write failure."""
        if offset <= self._committed:
            return
        if offset > self._end:
            raise ValueError("cannot commit past the end of the journal")
        self._committed = offset
        while self._pending_ends and self._pending_ends[0] <= offset:
            self._pending_ends.popleft()
        path = self.directory / "committed"
        temporary = path.with_suffix(".tmp")
        try:
            temporary.write_text(f"{offset}\n", encoding="ascii")
            os.replace(temporary, path)
        except OSError as exc:
            raise JournalError(f"cannot record audit journal progress: {exc}", exc.errno) from exc
        while len(self._starts) > 1 and self._starts[1] <= offset:
            start = self._starts.pop(0)
            fd = self._read_fds.pop(start, None)
            if fd is not None:
                self._close_fd(fd)
            with contextlib.suppress(FileNotFoundError):
                self._segment(start).unlink()

    # -- internals ---------------------------------------------------------------------

    def _segment(self, start: int) -> Path:
        return self.directory / f"{start:020d}{_SUFFIX}"

    def _reader(self, start: int) -> int:
        fd = self._read_fds.get(start)
        if fd is None:
            fd = os.open(self._segment(start), os.O_RDONLY)
            self._read_fds[start] = fd
        return fd

    def _roll(self) -> int:
        old = self._append_fd
        start = self._end
        try:
            fd = os.open(self._segment(start), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot start a journal segment: {exc}", exc.errno) from exc
        self._starts.append(start)
        self._append_fd = fd
        self._active_size = 0
        if old is not None:
            with self._sync_lock:
                # The sync thread may hold the old descriptor: it closes it after syncing.
                self._retired.append(old)
                self._dirty.add(old)
        return fd

    def _recover(self) -> None:
        starts = sorted(
            int(path.name[: -len(_SUFFIX)])
            for path in self.directory.glob(f"*{_SUFFIX}")
            if path.name[: -len(_SUFFIX)].isdigit()
        )
        committed = _read_committed(self.directory / "committed")
        if not starts:
            starts = [committed]
            self._segment(committed).touch(mode=0o600)
        committed = max(committed, starts[0])
        self._starts = starts
        end = starts[0]
        self._pending_ends.clear()
        for index, start in enumerate(starts):
            if index and start != end:
                log.error(
                    "audit journal gap: records lost",
                    extra={"from_offset": end, "to_offset": start},
                )
                committed = max(committed, start)
            end = self._scan(start, committed, last=index == len(starts) - 1)
        self._end = end
        self._committed = min(committed, end)
        last = starts[-1]
        self._append_fd = os.open(self._segment(last), os.O_WRONLY | os.O_APPEND)
        self._active_size = end - last

    def _scan(self, start: int, committed: int, *, last: bool) -> int:
        """Walk one segment's records, noting the unsent ones; returns its end offset."""
        path = self._segment(start)
        data = path.read_bytes()
        position = 0
        while position + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, position)
            body = data[position + _HEADER.size : position + _HEADER.size + length]
            if len(body) != length or zlib.crc32(body) != crc:
                break
            position += _HEADER.size + length
            if start + position > committed:
                self._pending_ends.append(start + position)
        if position != len(data):
            log.error(
                "audit journal: damaged tail dropped",
                extra={"segment": path.name, "bytes": len(data) - position},
            )
            if last:
                with open(path, "r+b") as handle:
                    handle.truncate(position)
        return start + position

    @staticmethod
    def _close_fd(fd: int) -> None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _read_committed(path: Path) -> int:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError):
        log.error("audit journal: unreadable committed offset; resending from the start")
        return 0
    return int(text) if text.isdigit() else 0
