"""The senders' own event loop, in a thread of its own: sending never runs on the request loop.

Every destination's :class:`~gateway.audit.sender.Sender` (its connection, TLS, framing,
reading the journal, decoding and rendering) runs as a task of this loop. The request loop
only appends records to the journal and calls :meth:`SendLoop.wake`; it never writes to a
repository, never encrypts, never waits for one (design.md §6).

Between the two threads:

* :meth:`SendLoop.wake` (any thread) schedules one wake-up of every sender, ``linger_s``
  later; calls made while one is pending cost nothing more: one ``call_soon_threadsafe``
  (one self-pipe write) per ``linger_s`` at most, however many records are appended.
  The senders likewise write batches at least ``linger_s`` apart. Both matter more than
  they seem: each wake-up of this thread takes the GIL from the request loop, and a
  handover of the GIL costs the loop far more than the work done (measured: a wake-up per
  append cost a quarter of the small-request throughput; one per 50 ms, a few per cent).
* The senders read the journal's end and cursors and advance their cursors from this
  thread; :class:`~gateway.audit.journal.Journal` guards that state with its lock.
* What a sender calls back on commit (``on_commit``) runs here; the service hands it to its
  own loop.

Lifecycle: :meth:`start` and :meth:`stop` block (call them from a worker thread or before
the request loop runs); :meth:`flush` is awaited on the caller's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from gateway.audit.sender import Sender

__all__ = ["SendLoop"]

_STOP_S = 30.0


class SendLoop:
    """An asyncio loop in a daemon thread, running one task per sender."""

    def __init__(self, *, name: str = "audit-send", linger_s: float = 0.0) -> None:
        """``linger_s``: how long a wake-up waits for more appends to join it."""
        self.name = name
        self.linger_s = linger_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._senders: Sequence[Sender] = ()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake_pending = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The senders' loop while it runs."""
        return self._loop

    def start(self, build: Callable[[], Sequence[Sender]]) -> Sequence[Sender]:
        """Start the thread, call ``build`` there (so what it makes belongs to that loop),
        start a task per sender it returns, and return them. Blocks until they run; raises
        what ``build`` raised (the thread then ends)."""
        ready: Future[Sequence[Sender]] = Future()
        thread = threading.Thread(
            target=self._main, args=(build, ready), name=self.name, daemon=True
        )
        self._thread = thread
        thread.start()
        try:
            return ready.result()
        except BaseException:
            thread.join()
            self._thread = None
            raise

    def wake(self) -> None:
        """Tell every sender the journal grew. Any thread; cheap when a wake-up is pending."""
        loop = self._loop
        if loop is None or self._wake_pending:
            return
        self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop is closing: the senders are done
            loop.call_soon_threadsafe(loop.call_later, self.linger_s, self._wake)

    async def flush(self, timeout_s: float) -> list[bool]:
        """Wait (on the caller's loop) until every sender confirmed everything journalled, at
        most ``timeout_s``; per sender, whether it did."""
        loop = self._loop
        if loop is None:
            return [False for _ in self._senders]
        future = asyncio.run_coroutine_threadsafe(self._flush(timeout_s), loop)
        return await asyncio.wrap_future(future)

    def stop(self) -> None:
        """Cancel the senders (each closes its transport), stop the loop, join the thread.
        Blocks; does nothing when not started."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            # Each sender closes its transport within a second or two; the bound is a guard.
            asyncio.run_coroutine_threadsafe(self._cancel(), loop).result(timeout=_STOP_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            self._thread = None

    # -- in the senders' thread ---------------------------------------------------------

    def _main(self, build: Callable[[], Sequence[Sender]], ready: Future[Sequence[Sender]]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            senders = build()
            self._senders = senders
            self._tasks = [
                loop.create_task(sender.run(), name=f"audit-sender-{sender.name}")
                for sender in senders
            ]
        except BaseException as exc:
            loop.close()
            ready.set_exception(exc)
            return
        self._loop = loop
        ready.set_result(senders)
        try:
            loop.run_forever()
        finally:
            self._loop = None
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def _wake(self) -> None:
        self._wake_pending = False
        for sender in self._senders:
            sender.wake()

    async def _flush(self, timeout_s: float) -> list[bool]:
        return list(await asyncio.gather(*(sender.flush(timeout_s) for sender in self._senders)))

    async def _cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
