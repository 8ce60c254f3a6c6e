"""Group commit: the journal's one maintenance thread.

The event loop appends records with plain ``write(2)`` calls and never waits for a disk
flush. This thread, woken by :meth:`GroupCommit.kick` after an append or a cursor move,
waits ``interval_s`` so that the burst that woke it joins the batch, then calls
:meth:`~gateway.audit.journal.Journal.sync` once: one ``fdatasync`` per segment written in
the batch (usually one), the cursor files that moved, the segments every destination has
passed. An idle journal costs no wake-up at all. A power loss loses at most the records of
the last ``interval_s``; a crash of the process loses none (they are in the kernel).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gateway.audit.errors import JournalError
from gateway.audit.journal import Journal

__all__ = ["GroupCommit"]

log = logging.getLogger("mado_gateway.audit.journal")


class GroupCommit:
    """Runs :meth:`Journal.sync` in its own thread, once per batch.

    ``on_sync`` receives the number of segments flushed, ``on_error`` a failed sync's
    :class:`JournalError`; both are called in this thread and must not raise.
    """

    def __init__(
        self,
        journal: Journal,
        *,
        interval_s: float,
        on_sync: Callable[[int], None],
        on_error: Callable[[JournalError], None],
    ) -> None:
        self.journal = journal
        self.interval_s = interval_s
        self._on_sync = on_sync
        self._on_error = on_error
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="audit-journal", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """Something changed: sync within ``interval_s``. Cheap; any thread."""
        if not self._wake.is_set():
            self._wake.set()

    def stop(self) -> None:
        """Finish the batch in progress and end the thread (blocks: call from a worker)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait()
            self._stopping.wait(self.interval_s)  # let the batch gather
            # Cleared before the sync: whatever is appended from now on wakes the next one.
            self._wake.clear()
            try:
                flushed = self.journal.sync()
            except JournalError as exc:
                self._on_error(exc)
                continue
            except Exception:  # a bug must not end durability silently
                log.exception("audit journal sync failed unexpectedly")
                continue
            self._on_sync(flushed)
