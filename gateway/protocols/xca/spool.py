"""A bounded disk spool for XCA-I answers (xcai-digest.md §6.3 option E; design.md §4).

A RAD-69/RAD-75 answer states every document's outcome in its SOAP envelope, before the first
document. When the documents come from WADO-RS, the gateway learns each outcome only by
fetching the document, so it keeps the bytes here until the envelope can be written: on disk,
never in memory, and never past a budget. Two budgets hold at every write: ``max_bytes`` for
the whole process and ``max_request_bytes`` for one inbound request. A write that would pass
either raises :class:`SpoolFull` before any of its bytes is written, and the file it was for
is discarded, so the caller reports that document as an error (XDSRepositoryOutOfResources)
and goes on with the others.

Lifetime: :meth:`Spool.request` opens a :class:`SpoolBudget` for one inbound request; every
:class:`SpoolFile` it creates is closed and its bytes returned to the process budget when the
budget's ``with`` block ends, whether it ends normally, by an exception or by the request's
cancellation (``asyncio.CancelledError`` passes through ``__exit__`` like any exception).

Files: created ``0600`` in the directory (made ``0700`` when missing) and unlinked at once,
so only the open descriptor keeps the bytes and the kernel frees them when it closes, even
when the process is killed. Where the platform has ``O_TMPFILE`` the file never has a name;
elsewhere it has one between creation and the unlink that follows, and that name carries the
process id (``mado-spool-<pid>-…``) so :meth:`Spool.clear_stale` removes what a process that
died in between left, without touching the files of a live sibling worker sharing the
directory. Unlinking at once was chosen over named files cleared at start because a killed
process then leaks nothing, and no other process can open what is spooled.

I/O is synchronous: writes go to the page cache in blocks of at most a few hundred KiB, which
costs less than a thread hop. Budgets are counted under a lock, so files may be written from
several threads. No aiohttp, no asyncio.

::

    SpoolFull   a write would pass the request or the process budget (``reason``)

A directory that cannot be made or written raises ``OSError`` from :class:`Spool` itself, so
the process fails at start rather than at its first answer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Literal

__all__ = ["BLOCK_BYTES", "Spool", "SpoolBudget", "SpoolFile", "SpoolFull"]

BLOCK_BYTES = 256 * 1024
"""What :meth:`SpoolFile.chunks` reads at a time by default."""

_PREFIX = "mado-spool-"
_NAMED = re.compile(re.escape(_PREFIX) + r"(\d+)-[A-Za-z0-9_]+")
_FULL_DISK = frozenset({errno.ENOSPC, errno.EDQUOT})


class SpoolFull(Exception):
    """A write would take the spool past a budget: ``reason`` is ``"request"`` (one inbound
    request's) or ``"process"`` (every request's together, or the file system is full)."""

    def __init__(self, reason: Literal["request", "process"], limit: int) -> None:
        self.reason = reason
        self.limit = limit
        super().__init__(f"the spool's {reason} budget of {limit} bytes is used up")


class Spool:
    """The spool of one process: its directory and its process-wide budget.

    Raises ``OSError`` when ``directory`` cannot be made, is not a directory, or a file
    cannot be created in it. ``max_request_bytes`` above ``max_bytes`` is a ``ValueError``.
    """

    def __init__(self, directory: Path, *, max_bytes: int, max_request_bytes: int) -> None:
        if max_bytes < 0 or max_request_bytes < 0 or max_request_bytes > max_bytes:
            raise ValueError("budgets: 0 <= max_request_bytes <= max_bytes")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_request_bytes = max_request_bytes
        self._lock = threading.Lock()
        self._used = 0
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(self._open())  # a directory the process cannot write fails here, at start

    @property
    def used_bytes(self) -> int:
        """Bytes spooled now, every request together."""
        return self._used

    def request(self) -> SpoolBudget:
        """The budget of one inbound request: use it as a context manager."""
        return SpoolBudget(self)

    def clear_stale(self) -> int:
        """Remove the spool files of processes that no longer run; returns how many.

        Only names this module gives are considered, and only those whose process id is not
        a running process (nor this one): a live sibling worker's files stay.
        """
        removed = 0
        for entry in os.scandir(self.directory):
            match = _NAMED.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            pid = int(match.group(1))
            if pid == os.getpid() or _running(pid):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
        return removed

    def _open(self) -> int:
        """A new file open for reading and writing, with no name left in the directory."""
        flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
        unnamed = getattr(os, "O_TMPFILE", 0)
        if unnamed:
            try:
                return os.open(self.directory, flags | unnamed, 0o600)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
                # The file system has no unnamed files: fall back to a name, unlinked at once.
        fd, name = tempfile.mkstemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=self.directory)
        try:
            os.unlink(name)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _reserve(self, budget: SpoolBudget, size: int) -> None:
        with self._lock:
            if budget.used_bytes + size > self.max_request_bytes:
                raise SpoolFull("request", self.max_request_bytes)
            if self._used + size > self.max_bytes:
                raise SpoolFull("process", self.max_bytes)
            self._used += size
            budget._used += size

    def _release(self, budget: SpoolBudget, size: int) -> None:
        with self._lock:
            self._used -= size
            budget._used -= size


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


class SpoolBudget:
    """The spool of one inbound request: every file it creates, and the bytes they hold.

    A context manager; leaving it (:meth:`close`) discards every file it created. A budget
    that is closed creates no more files (``ValueError``).
    """

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._files: set[SpoolFile] = set()
        self._used = 0
        self._closed = False

    @property
    def used_bytes(self) -> int:
        """Bytes this request's files hold now."""
        return self._used

    def file(self) -> SpoolFile:
        """A new, empty file. Raises ``OSError`` when it cannot be created."""
        if self._closed:
            raise ValueError("the request's spool is closed")
        made = SpoolFile(self, self._spool._open())
        self._files.add(made)
        return made

    def close(self) -> None:
        """Discard every file this request created and return its bytes. Idempotent."""
        self._closed = True
        while self._files:
            self._files.pop().discard()

    def __enter__(self) -> SpoolBudget:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _forget(self, spooled: SpoolFile) -> None:
        self._files.discard(spooled)
        if spooled.size:
            self._spool._release(self, spooled.size)


class SpoolFile:
    """One spooled document: written once from the start, then read back any number of times.

    Made by :meth:`SpoolBudget.file`. :meth:`write` until :meth:`finish`, then
    :meth:`chunks`. The bytes live until :meth:`discard` or the end of the budget.
    """

    __slots__ = ("_budget", "_fd", "_finished", "size")

    def __init__(self, budget: SpoolBudget, fd: int) -> None:
        self._budget = budget
        self._fd = fd
        self._finished = False
        self.size = 0

    @property
    def discarded(self) -> bool:
        return self._fd < 0

    def write(self, data: bytes) -> None:
        """Append ``data``.

        Raises :class:`SpoolFull` when it would pass the request's or the process's budget,
        before any of it is written; the file is then discarded and its bytes returned (a full
        disk counts as the process budget). Any other ``OSError`` discards it too. Raises
        ``ValueError`` after :meth:`finish` or :meth:`discard`.
        """
        if self._fd < 0 or self._finished:
            raise ValueError("the spool file takes no more writes")
        if not data:
            return
        spool = self._budget._spool
        try:
            spool._reserve(self._budget, len(data))
        except SpoolFull:
            self.discard()
            raise
        self.size += len(data)  # reserved: discard() returns it whatever happens next
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            self.discard()
            if exc.errno in _FULL_DISK:
                raise SpoolFull("process", spool.max_bytes) from exc
            raise

    def finish(self) -> None:
        """No more writes. The bytes are in the kernel's page cache from each write on, so
        there is nothing to flush; a reader sees them all."""
        if self._fd < 0:
            raise ValueError("the spool file was discarded")
        self._finished = True

    def chunks(self, block: int = BLOCK_BYTES) -> Iterator[bytes]:
        """The bytes from the start, ``block`` at a time (the last block may be shorter).

        Each call reads independently (positional reads), so two readers do not disturb each
        other. Raises ``ValueError`` before :meth:`finish`, and from the next block on when
        the file is discarded while a reader is at it.
        """
        if block < 1:
            raise ValueError("block must be at least 1 byte")
        if not self._finished or self._fd < 0:
            raise ValueError("the spool file is not finished, or was discarded")
        return self._read(block)

    def _read(self, block: int) -> Iterator[bytes]:
        offset, end = 0, self.size
        while offset < end:
            if self._fd < 0:
                raise ValueError("the spool file was discarded while it was read")
            data = os.pread(self._fd, min(block, end - offset), offset)
            if not data:
                raise OSError(errno.EIO, "spool file shorter than written")
            offset += len(data)
            yield data

    def discard(self) -> None:
        """Close the file and return its bytes to the budgets. Idempotent."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        try:
            os.close(fd)
        finally:
            self._budget._forget(self)
            self.size = 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
