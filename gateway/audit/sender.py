"""Draining the journal to the Audit Record Repository, at least once.

One asyncio task per process. It holds a *send offset* (what has been written) ahead of the
journal's *committed offset* (what is confirmed). The cycle:

1. Connect when there is anything unconfirmed; on failure wait with exponential backoff
   (``backoff_initial_s`` doubling up to ``backoff_max_s``, with jitter) and retry, forever:
   nothing is dropped while the repository is down, the journal cap bounds the backlog.
2. Before each write, let the event loop deliver pending socket events and ask the
   transport whether the repository closed the connection (an idle timeout, a restart); if
   so, reconnect first rather than write into a dead connection.
3. Write a batch read from the journal; advance the send offset.
4. Confirm: once the transport reports nothing unacknowledged, the written batches count as
   acknowledged; a batch is committed when the connection is still seen healthy
   ``settle_s`` after its acknowledgement. The settle time covers a repository that
   acknowledged bytes at the TCP level and then stopped before storing them.
5. On any transport error: close, move the send offset back to the committed offset and
   resend from there (RFC 5425 has no application acknowledgement, so this is at-least-once:
   messages acknowledged but not yet committed when a connection fails are sent twice, and
   are counted in ``mado_gateway_audit_resent_total``).

After a crash the committed offset on disk is where the next process starts.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.audit.errors import JournalError, TransportError
from gateway.audit.journal import Journal
from gateway.audit.metrics import AuditMetrics
from gateway.audit.transports import Transport

__all__ = ["Sender"]

log = logging.getLogger("mado_gateway.audit.sender")


@dataclass(slots=True)
class _Batch:
    end: int
    count: int
    acknowledged_at: float | None = None


class Sender:
    """Sends what the journal holds through ``transport``; see the module docstring."""

    def __init__(
        self,
        journal: Journal,
        transport: Transport,
        metrics: AuditMetrics,
        *,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        settle_s: float = 0.0,
        batch_records: int = 256,
        batch_bytes: int = 1024 * 1024,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.journal = journal
        self.transport = transport
        self.metrics = metrics
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.settle_s = settle_s
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self.on_commit = on_commit
        self._send_offset = journal.committed
        self._in_flight: collections.deque[_Batch] = collections.deque()
        self._connected = False
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._tick_s = max(0.05, min(0.5, settle_s / 2 if settle_s else 0.5))

    def wake(self) -> None:
        """Tell the sender the journal grew. Cheap; call after every append."""
        self._wake.set()

    async def flush(self, timeout_s: float) -> bool:
        """Wait until everything journalled before the call is committed; False on timeout."""
        target = self.journal.end
        deadline = time.monotonic() + timeout_s
        while self.journal.committed < target:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._progress.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._progress.wait()
            except TimeoutError:
                return self.journal.committed >= target
        return True

    async def run(self) -> None:
        """Send until cancelled. Never returns otherwise; never raises but ``CancelledError``."""
        backoff = self.backoff_initial_s
        try:
            while True:
                try:
                    await self._wait_for_work()
                    if not self._connected:
                        await self.transport.connect()
                        self._set_connected(True)
                        log.info("connected to the audit record repository")
                    await self._pump()
                except TransportError as exc:
                    self._failed(exc)
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
                    backoff = min(backoff * 2, self.backoff_max_s)
                    continue
                except JournalError:
                    log.exception("audit journal unreadable; sender pausing")
                    await asyncio.sleep(self.backoff_max_s)
                    continue
                backoff = self.backoff_initial_s
        finally:
            self._set_connected(False)
            await self.transport.close()

    async def _wait_for_work(self) -> None:
        """Return when something is unconfirmed; drop an idle connection the peer closed."""
        while self.journal.committed >= self.journal.end:
            self._wake.clear()
            if self.journal.committed < self.journal.end:
                return
            await self._nap()
            if self._connected and self.transport.peer_closed():
                # Nothing is at stake: reconnect lazily when the next message comes.
                log.info("audit record repository closed the idle connection")
                await self._disconnect()

    async def _pump(self) -> None:
        """Write and confirm until everything is committed. Raises TransportError."""
        while self.journal.committed < self.journal.end:
            await asyncio.sleep(0)  # let the loop deliver an EOF that is already in
            self._confirm()
            if self._send_offset < self.journal.end:
                records = self.journal.read(
                    self._send_offset, max_bytes=self.batch_bytes, max_records=self.batch_records
                )
                if self.transport.peer_closed():
                    raise TransportError("closed", "the repository closed the connection")
                await self.transport.send([record.payload for record in records])
                self._send_offset = records[-1].end
                self._in_flight.append(_Batch(end=records[-1].end, count=len(records)))
                continue
            self._wake.clear()
            await self._nap()

    async def _nap(self) -> None:
        """Sleep until woken by an append or for one tick, whichever comes first."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # races with the event being set, and the task would then never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._tick_s):
                await self._wake.wait()

    def _confirm(self) -> None:
        if not self._in_flight:
            return
        if self.transport.peer_closed():
            raise TransportError("closed", "the repository closed the connection")
        now = time.monotonic()
        if self.transport.unconfirmed_bytes() == 0:
            for batch in self._in_flight:
                if batch.acknowledged_at is None:
                    batch.acknowledged_at = now
        committed_to = None
        count = 0
        while self._in_flight:
            head = self._in_flight[0]
            if head.acknowledged_at is None or now - head.acknowledged_at < self.settle_s:
                break
            self._in_flight.popleft()
            committed_to = head.end
            count += head.count
        if committed_to is not None:
            self.journal.commit(committed_to)
            self.metrics.sent.inc(count)
            self._progress.set()
            if self.on_commit is not None:
                self.on_commit()

    def _failed(self, exc: TransportError) -> None:
        self.metrics.failed.labels(exc.reason).inc()
        unconfirmed = sum(batch.count for batch in self._in_flight)
        if unconfirmed:
            self.metrics.resent.inc(unconfirmed)
        log.warning(
            "audit record repository unavailable; will retry",
            extra={"reason": exc.reason, "detail": str(exc), "unconfirmed": unconfirmed},
        )
        self._in_flight.clear()
        self._send_offset = self.journal.committed
        # The next connect() closes the broken connection before opening a new one.
        self._set_connected(False)

    async def _disconnect(self) -> None:
        self._in_flight.clear()
        self._send_offset = self.journal.committed
        self._set_connected(False)
        await self.transport.close()

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        self.metrics.connected.set(1 if connected else 0)
