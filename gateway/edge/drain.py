"""Draining one process at SIGTERM: requests in flight finish, new ones go elsewhere.

The contract (README "Operating"):

1. at SIGTERM the process stops accepting connections on the public port and ``/readyz``
   answers 503 ``draining`` at once (on the admin listener, and on connections already open);
2. requests in flight have ``server.drain_s`` seconds to finish; a stream that ends in time
   ends as it would have;
3. after that each request still running is cancelled: its connection is closed without the
   terminating chunk (so the client sees a cut, never a short complete answer), and its
   exchange ends ``aborted`` with the error ``shutdown`` — not ``client``, which means the
   client went away first.

:class:`Drain` is the state the middleware, the readiness check and the serving loop share;
it holds the running request tasks so that the loop cancels exactly those. Single-threaded:
every method runs on the event loop.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["SHUTDOWN", "Drain"]

SHUTDOWN = "shutdown"
"""The exchange error of a request cut because the process was stopping."""

CLIENT = "client"


class Drain:
    """Whether the process is draining, and the requests it is waiting for."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[object]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.started: float | None = None  # monotonic time of SIGTERM
        self.expired = False  # drain_s has passed: what is cancelled now is cut by us
        self.cancelled = 0

    @property
    def draining(self) -> bool:
        return self.started is not None

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def ready(self) -> str | None:
        """A readiness check (:mod:`.health`): ``draining`` once SIGTERM has arrived."""
        return "draining: the process is stopping" if self.draining else None

    def abort_cause(self) -> str:
        """The error of an exchange whose handler was cancelled: ``shutdown`` when the drain
        cut it, ``client`` otherwise (aiohttp cancels a handler whose client went away)."""
        return SHUTDOWN if self.expired else CLIENT

    def enter(self, task: asyncio.Task[object] | None) -> None:
        """A request handler started in ``task``."""
        if task is not None:
            self._running.add(task)
            self._idle.clear()

    def leave(self, task: asyncio.Task[object] | None) -> None:
        """The request handler in ``task`` is over."""
        if task is not None:
            self._running.discard(task)
        if not self._running:
            self._idle.set()

    def begin(self) -> None:
        """SIGTERM arrived: from now on the process is not ready."""
        if self.started is None:
            self.started = time.monotonic()

    async def wait(self, drain_s: float) -> bool:
        """Wait up to ``drain_s`` for every request to finish; True when they all did."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=drain_s)
        except TimeoutError:
            return False
        return True

    async def cut(self, grace_s: float = 5.0) -> int:
        """Cancel every request still running (their exchanges end ``shutdown``) and wait up
        to ``grace_s`` for them to be sealed; returns how many were cancelled."""
        self.expired = True
        tasks = [task for task in self._running if not task.done()]
        for task in tasks:
            task.cancel()
        self.cancelled += len(tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        return len(tasks)
