"""The on-disk, append-only audit journal, read by several destinations at their own pace.

Every audit record is appended here before the exchange that caused it is over. Each
destination has a *cursor*: the offset up to which it has confirmed the records. Offsets
are logical byte positions that only grow, so a record keeps its place across restarts.

Layout of the directory::

    00000000000000000000.seg   segments, named by the logical offset of their first byte
    00000000000004194391.seg
    cursors/arr                one cursor per destination (gateway.audit.cursors)
    lock                       flock(2)-ed by the one process using the journal

A record is ``length (u32 BE) · CRC-32 of payload (u32 BE) · payload``; records never span
segments; what a payload holds is :mod:`gateway.audit.record`'s business. Threads:

* The owner (the request event loop) appends. :meth:`Journal.append` is one ``write(2)``
  to an ``O_APPEND`` descriptor and a few bookkeeping operations: once it returns, the
  record survives the death of this process (SIGKILL included), because it is in the
  kernel. No ``fsync``, no other file, no lock another thread holds across I/O.
* The senders' thread (:mod:`gateway.audit.sendloop`) advances cursors
  (:meth:`Journal.advance`, memory only) and reads :attr:`Journal.end`; the state both
  threads touch is guarded by one lock, held for bookkeeping only.
* One maintenance thread calls :meth:`Journal.sync` (group commit, see
  :mod:`gateway.audit.groupcommit`): one ``fdatasync`` per segment written since the last
  call, then the changed cursor files, then the deletion of segments every cursor has
  passed. A power loss can lose what the last sync had not flushed.
* Readers (:meth:`Journal.reader`) read from any thread through descriptors of their own.

A record cut short by a power loss, or whose checksum fails, ends the readable journal:
:meth:`Journal.open` truncates the last segment there. ``check`` (when given) sees each
record some cursor has not passed, at open; its :class:`JournalCorrupt` refuses the journal.

The cap bounds the unsent bytes of the *slowest* destination (``end - min(cursors)``); the
disk holds at most one more segment. ``reserved=True`` appends may use ``reserve_bytes``
beyond the cap, so the Security Alert announcing that the cap was crossed still has room.
A destination without a cursor starts at the oldest record still journalled (from the
legacy ``committed`` offset, when a journal of an earlier release has one).
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import logging
import os
import threading
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from gateway.audit.cursors import CursorFiles, check_names
from gateway.audit.errors import JournalError, JournalFull
from gateway.audit.recovery import scan_segments
from gateway.audit.segments import HEADER, MAX_RECORD, SUFFIX, JournalReader, Record, segment_path

__all__ = ["Journal", "JournalReader", "Record"]

log = logging.getLogger("mado_gateway.audit.journal")


class _Ends:
    """Ascending end offsets of the records some cursor has not passed."""

    __slots__ = ("_head", "_items")

    def __init__(self) -> None:
        self._items: list[int] = []
        self._head = 0

    def append(self, end: int) -> None:
        self._items.append(end)

    def drop_through(self, offset: int) -> None:
        self._head = bisect.bisect_right(self._items, offset, self._head)
        if self._head > 4096 and self._head * 2 > len(self._items):
            del self._items[: self._head]
            self._head = 0

    def count_after(self, offset: int) -> int:
        return len(self._items) - bisect.bisect_right(self._items, offset, self._head)


class Journal:
    """An append-only, segmented, checksummed journal with one cursor per destination."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        cursors: Iterable[str],
        max_bytes: int,
        segment_bytes: int = 4 * 1024 * 1024,
        reserve_bytes: int = 256 * 1024,
        check: Callable[[bytes], None] | None = None,
    ) -> None:
        """``cursors`` names the destinations (``ValueError`` unless unique file names)."""
        self.directory = Path(directory)
        self.cursor_names = check_names(cursors)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.reserve_bytes = reserve_bytes
        self._check = check
        self._files = CursorFiles(self.directory)
        self._lock = threading.Lock()  # state shared with the sync thread and readers
        self._sync_lock = threading.Lock()  # one sync at a time
        self._starts: list[int] = []  # segment start offsets, ascending
        self._append_fd: int | None = None
        self._lock_fd: int | None = None
        self._active_size = 0
        self._end = 0
        self._cursors: dict[str, int] = {}
        self._stored: dict[str, int] = {}
        self._floor = 0  # the slowest cursor
        self._ends = _Ends()
        self._dirty: set[int] = set()
        self._retired: list[int] = []
        self._reader: JournalReader | None = None

    # -- state (owner thread) ------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._append_fd is not None

    @property
    def end(self) -> int:
        """Logical offset just past the last record."""
        return self._end

    @property
    def start(self) -> int:
        """Logical offset of the oldest record still on disk."""
        return self._starts[0] if self._starts else 0

    def cursor(self, name: str) -> int:
        """Offset up to which destination ``name`` has confirmed the records."""
        return self._cursors[name]

    @property
    def pending_bytes(self) -> int:
        """Unsent bytes of the slowest destination (the cap applies to this)."""
        return self._end - self._floor

    @property
    def pending_records(self) -> int:
        """Unsent records of the slowest destination."""
        with self._lock:
            return self._ends.count_after(self._floor)

    def pending_bytes_of(self, name: str) -> int:
        return self._end - self._cursors[name]

    def pending_records_of(self, name: str) -> int:
        with self._lock:
            return self._ends.count_after(self._cursors[name])

    def snapshot(self) -> tuple[tuple[int, ...], int]:
        """Segment starts and end, consistent with each other. Safe from any thread."""
        with self._lock:
            return tuple(self._starts), self._end

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Take the directory's lock, recover segments and cursors, open the last segment.

        Raises :class:`JournalError` when the directory cannot be used or another process
        holds the lock; ``check``'s :class:`~gateway.audit.errors.JournalCorrupt` as is.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot open journal {self.directory}: {exc}", exc.errno) from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            _close_fd(self._lock_fd)
            self._lock_fd = None
            raise JournalError(f"journal {self.directory} is used by another process") from exc
        try:
            self._recover()
        except OSError as exc:
            self.close()
            raise JournalError(
                f"cannot recover journal {self.directory}: {exc}", exc.errno
            ) from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Sync and close every file; the journal can be opened again."""
        if self._append_fd is not None:
            with contextlib.suppress(JournalError):
                self.sync()
            _close_fd(self._append_fd)
            self._append_fd = None
        for fd in self._retired:
            _close_fd(fd)
        self._retired.clear()
        self._dirty.clear()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._lock_fd is not None:
            _close_fd(self._lock_fd)
            self._lock_fd = None

    # -- writing (owner thread; advance: any thread) --------------------------------------

    def append(self, payload: bytes, *, reserved: bool = False) -> int:
        """Append one record and return its end offset.

        Raises :class:`JournalFull` when it would take the slowest destination's unsent
        bytes over the cap (plus the reserve when ``reserved``), :class:`JournalError` when
        the write fails; in both cases nothing was appended.
        """
        fd = self._append_fd
        if fd is None:
            raise JournalError("journal is not open")
        if len(payload) > MAX_RECORD:
            raise JournalError("audit message too large for the journal")
        size = HEADER.size + len(payload)
        limit = self.max_bytes + (self.reserve_bytes if reserved else 0)
        if self._end - self._floor + size > limit:
            raise JournalFull(f"audit journal holds {self.pending_bytes} unsent bytes")
        if self._active_size and self._active_size + size > self.segment_bytes:
            fd = self._roll()
        record = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
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
        with self._lock:
            self._active_size += size
            self._end += size
            self._dirty.add(fd)
            self._ends.append(self._end)
            return self._end

    def advance(self, name: str, offset: int) -> None:
        """Move ``name``'s cursor to ``offset`` (a record end), in memory; the next
        :meth:`sync` persists it and deletes the segments every cursor has passed."""
        if offset <= self._cursors[name]:
            return
        if offset > self._end:
            raise ValueError("cannot advance a cursor past the end of the journal")
        with self._lock:
            self._cursors[name] = offset
            self._floor = min(self._cursors.values())
            self._ends.drop_through(self._floor)

    # -- maintenance (the sync thread) ---------------------------------------------------

    def sync(self) -> int:
        """Flush what was written since the last call, store the cursors that moved, delete
        the segments every cursor has passed; returns how many segments were ``fdatasync``-ed.

        Safe from another thread than the owner's. Raises :class:`JournalError` (the first
        failure; every step is still attempted).
        """
        with self._sync_lock:
            with self._lock:
                dirty, self._dirty = self._dirty, set()
                retired, self._retired = self._retired, []
                moved = {n: o for n, o in self._cursors.items() if self._stored.get(n) != o}
                doomed: list[int] = []
                while len(self._starts) > 1 and self._starts[1] <= self._floor:
                    doomed.append(self._starts.pop(0))
            failure: OSError | None = None
            for fd in dirty:
                try:
                    os.fdatasync(fd)
                except OSError as exc:
                    failure = failure or exc
                    if fd not in retired:  # try again next time
                        with self._lock:
                            self._dirty.add(fd)
            for name, offset in moved.items():
                try:
                    self._files.store(name, offset)
                    self._stored[name] = offset
                except OSError as exc:
                    failure = failure or exc
            for start in doomed:  # after the cursors: a crash in between only resends
                try:
                    segment_path(self.directory, start).unlink(missing_ok=True)
                except OSError as exc:
                    failure = failure or exc
            for fd in retired:
                _close_fd(fd)
        if failure is not None:
            raise JournalError(f"audit journal sync failed: {failure}", failure.errno)
        return len(dirty)

    # -- reading -------------------------------------------------------------------------

    def reader(self) -> JournalReader:
        """A reader with its own descriptors, usable from any one thread at a time."""
        return JournalReader(self.directory, self.snapshot)

    def read(self, offset: int, *, max_bytes: int, max_records: int) -> list[Record]:
        """:meth:`JournalReader.read` through a reader the journal keeps (owner thread)."""
        if self._reader is None:
            self._reader = self.reader()
        return self._reader.read(offset, max_bytes=max_bytes, max_records=max_records)

    # -- internals -----------------------------------------------------------------------

    def _roll(self) -> int:
        start = self._end
        try:
            fd = os.open(
                segment_path(self.directory, start),
                os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                0o600,
            )
        except OSError as exc:
            raise JournalError(f"cannot start a journal segment: {exc}", exc.errno) from exc
        with self._lock:
            old = self._append_fd
            self._starts.append(start)
            self._append_fd = fd
            self._active_size = 0
            if old is not None:
                # The sync thread flushes the old descriptor, then closes it.
                self._retired.append(old)
                self._dirty.add(old)
        return fd

    def _recover(self) -> None:
        starts = sorted(
            int(path.name[: -len(SUFFIX)])
            for path in self.directory.glob(f"*{SUFFIX}")
            if path.name[: -len(SUFFIX)].isdigit()
        )
        stored, legacy = self._files.load(self.cursor_names)
        if not starts:
            known = [offset for offset in (*stored.values(), legacy) if offset is not None]
            starts = [max(known, default=0)]
            segment_path(self.directory, starts[0]).touch(mode=0o600)
        fallback = starts[0] if legacy is None else legacy
        wanted = {name: fallback if offset is None else offset for name, offset in stored.items()}
        check_from = max(starts[0], min(wanted.values()))
        scan = scan_segments(self.directory, starts, check=self._check, check_from=check_from)
        end = scan.end
        self._starts = starts
        self._end = end
        self._cursors = {name: scan.boundary(name, offset) for name, offset in wanted.items()}
        self._floor = min(self._cursors.values())
        self._ends = _Ends()
        for record_end in scan.ends:
            self._ends.append(record_end)
        self._ends.drop_through(self._floor)
        for name, offset in self._cursors.items():
            self._files.store(name, offset)
        self._stored = dict(self._cursors)
        self._files.retire_legacy()
        last = starts[-1]
        self._append_fd = os.open(segment_path(self.directory, last), os.O_WRONLY | os.O_APPEND)
        self._active_size = end - last


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
