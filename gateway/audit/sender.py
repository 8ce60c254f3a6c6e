"""Draining the journal to one destination, at least once.

One asyncio task per destination, on the senders' own loop (:mod:`gateway.audit.sendloop`),
never the request loop. It holds a *send offset* (what has been written) ahead of its
*cursor* in the journal (what is confirmed). Journal reads run in a worker thread
(``executor``: the disk may be slow); decoding and rendering, CPU work, run on the senders'
loop in slices of a few records.
The cycle:

1. Connect when there is anything unconfirmed; on failure wait with exponential backoff
   (``backoff_initial_s`` doubling up to ``backoff_max_s``, with jitter) and retry, forever:
   nothing is dropped while the repository is down, the journal cap bounds the backlog.
2. Before each write, let the event loop deliver pending socket events and ask the
   transport whether the repository closed the connection (an idle timeout, a restart); if
   so, reconnect first rather than write into a dead connection.
3. Write a batch read from the journal and rendered for this destination; advance the send
   offset. Batches are at least ``linger_s`` apart unless a whole batch is waiting, so a
   steady flow of records travels in a few large batches rather than one per record. A
   record that cannot be decoded or rendered, or has no form for this destination, is
   skipped: counted in ``mado_gateway_audit_skipped_total{destination,reason}`` and
   logged with its offset, never retried forever (it would stop this destination for good).
4. Confirm: once the transport reports nothing unacknowledged, the written batches count as
   acknowledged; a batch is committed when the connection is still seen healthy
   ``settle_s`` after its acknowledgement. The settle time covers a repository that
   acknowledged bytes at the TCP level and then stopped before storing them.
5. On any transport error: close, move the send offset back to the cursor and
   resend from there (RFC 5425 has no application acknowledgement, so this is at-least-once:
   messages acknowledged but not yet committed when a connection fails are sent twice, and
   are counted in ``mado_gateway_audit_resent_total``).

The cursor moves in memory; the group-commit thread stores it (``cursors/<name>``). After
a crash the stored cursor is where the next process starts for this destination.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from gateway.audit.destinations import Renderer
from gateway.audit.errors import JournalError, RecordError, TransportError
from gateway.audit.journal import Journal, Record
from gateway.audit.metrics import DestinationMetrics
from gateway.audit.record import AuditRecord, LegacyFrame, decode
from gateway.audit.transports import Transport

__all__ = ["Sender"]

log = logging.getLogger("mado_gateway.audit.sender")

_SLICE = 16  # records rendered between two yields to the loop: about 1.5 ms


def _decode_payload(record: Record) -> AuditRecord | LegacyFrame:
    return decode(record.payload)


@dataclass(slots=True)
class _Batch:
    end: int
    count: int
    skipped: list[str] = field(default_factory=list)  # a reason per record passed over
    acknowledged_at: float | None = None


@dataclass(frozen=True, slots=True)
class _Prepared:
    end: int
    payloads: list[bytes]
    skipped: list[str]


class Sender:
    """Sends what the journal holds to destination ``name``; see the module docstring."""

    def __init__(
        self,
        journal: Journal,
        name: str,
        transport: Transport,
        render: Renderer,
        metrics: DestinationMetrics,
        *,
        executor: Executor | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        settle_s: float = 0.0,
        batch_records: int = 256,
        batch_bytes: int = 256 * 1024,
        linger_s: float = 0.0,
        on_commit: Callable[[], None] | None = None,
        decode: Callable[[Record], AuditRecord | LegacyFrame] | None = None,
    ) -> None:
        """``executor`` runs journal reads (None: the loop's default one); ``linger_s`` is
        the least time between two batches unless a whole batch is waiting (records then
        travel in fewer, larger batches); ``on_commit`` is called after the cursor moved;
        ``decode`` gives a read record's value (None: decode its bytes; the audit service
        passes :meth:`~gateway.audit.recent.RecentRecords.decode`)."""
        self.journal = journal
        self.name = name
        self.transport = transport
        self.render = render
        self.metrics = metrics
        self.executor = executor
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.settle_s = settle_s
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self.linger_s = linger_s
        self.on_commit = on_commit
        self._decode = decode or _decode_payload
        self._last_batch = 0.0
        self._reader = journal.reader()
        self._send_offset = journal.cursor(name)
        self._in_flight: collections.deque[_Batch] = collections.deque()
        self._connected = False
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._tick_s = max(0.05, min(0.5, settle_s / 2 if settle_s else 0.5))

    @property
    def cursor(self) -> int:
        return self.journal.cursor(self.name)

    def wake(self) -> None:
        """Tell the sender the journal grew. Cheap; call after every append."""
        self._wake.set()

    def release(self) -> None:
        """Close the journal reader. Call once the task and the executor are done."""
        self._reader.close()

    async def flush(self, timeout_s: float) -> bool:
        """Wait until everything journalled is confirmed, including what is appended while
        waiting (the alert that the cap is no longer reached, say); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.cursor < self.journal.end:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._progress.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._progress.wait()
            except TimeoutError:
                return self.cursor >= self.journal.end
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
                        log.info("connected to audit destination", extra={"destination": self.name})
                    await self._pump()
                except TransportError as exc:
                    self._failed(exc)
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
                    backoff = min(backoff * 2, self.backoff_max_s)
                    continue
                except JournalError:
                    log.exception(
                        "audit journal unreadable; sender pausing",
                        extra={"destination": self.name},
                    )
                    await asyncio.sleep(self.backoff_max_s)
                    continue
                backoff = self.backoff_initial_s
        finally:
            self._set_connected(False)
            await self.transport.close()

    async def _wait_for_work(self) -> None:
        """Return when something is unconfirmed; drop an idle connection the peer closed."""
        while self.cursor >= self.journal.end:
            self._wake.clear()
            if self.cursor < self.journal.end:
                return
            await self._nap()
            if self._connected and self.transport.peer_closed():
                # Nothing is at stake: reconnect lazily when the next message comes.
                log.info(
                    "audit destination closed the idle connection",
                    extra={"destination": self.name},
                )
                await self._disconnect()

    async def _pump(self) -> None:
        """Write and confirm until everything is confirmed. Raises TransportError."""
        loop = asyncio.get_running_loop()
        while self.cursor < self.journal.end:
            await asyncio.sleep(0)  # let the loop deliver an EOF that is already in
            self._confirm()
            if self._send_offset < self.journal.end:
                await self._linger()
                records = await loop.run_in_executor(self.executor, self._read, self._send_offset)
                batch = await self._render_all(records, self._send_offset)
                if self.transport.peer_closed():
                    raise TransportError("closed", "the repository closed the connection")
                if batch.payloads:
                    await self.transport.send(batch.payloads)
                self._send_offset = batch.end
                self._in_flight.append(
                    _Batch(end=batch.end, count=len(batch.payloads), skipped=batch.skipped)
                )
                continue
            self._wake.clear()
            await self._nap()

    async def _linger(self) -> None:
        """Wait until ``linger_s`` after the last batch, unless a whole batch is waiting."""
        wait = self._last_batch + self.linger_s - time.monotonic()
        if wait > 0 and self.journal.end - self._send_offset < self.batch_bytes:
            await asyncio.sleep(wait)
        self._last_batch = time.monotonic()

    def _read(self, offset: int) -> list[Record]:
        """A batch of records from ``offset`` (in a worker thread: the disk may be slow)."""
        return self._reader.read(offset, max_bytes=self.batch_bytes, max_records=self.batch_records)

    async def _render_all(self, records: list[Record], offset: int) -> _Prepared:
        """Decode and render ``records`` on the loop, yielding every few records.

        Rendering is CPU work: in a thread it would hold the GIL against the event loop,
        which then waits a whole switch interval after each of its system calls; in short
        slices here it delays a request by one slice at most.
        """
        payloads: list[bytes] = []
        skipped: list[str] = []
        for index, record in enumerate(records):
            if index and not index % _SLICE:
                await asyncio.sleep(0)
            try:
                payload = self.render(self._decode(record))
            except RecordError as exc:
                self._skip(skipped, "undecodable", record.start, str(exc))
                continue
            except Exception as exc:
                self._skip(skipped, "unrenderable", record.start, repr(exc))
                continue
            if payload is None:
                skipped.append("not-applicable")
                continue
            payloads.append(payload)
        return _Prepared(
            end=records[-1].end if records else offset, payloads=payloads, skipped=skipped
        )

    def _skip(self, skipped: list[str], reason: str, offset: int, detail: str) -> None:
        skipped.append(reason)
        log.error(
            "audit record skipped: it cannot be sent to this destination",
            extra={"destination": self.name, "offset": offset, "reason": reason, "detail": detail},
        )

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
        confirmed_to = None
        count = 0
        while self._in_flight:
            head = self._in_flight[0]
            if head.acknowledged_at is None or now - head.acknowledged_at < self.settle_s:
                break
            self._in_flight.popleft()
            confirmed_to = head.end
            count += head.count
            for reason in head.skipped:
                self.metrics.skipped[reason].inc()
        if confirmed_to is not None:
            self.journal.advance(self.name, confirmed_to)
            self.metrics.sent.inc(count)
            self._progress.set()
            if self.on_commit is not None:
                self.on_commit()

    def _failed(self, exc: TransportError) -> None:
        failures = self.metrics.failed
        failures.get(exc.reason, failures["write"]).inc()
        unconfirmed = sum(batch.count for batch in self._in_flight)
        if unconfirmed:
            self.metrics.resent.inc(unconfirmed)
        log.warning(
            "audit destination unavailable; will retry",
            extra={
                "destination": self.name,
                "reason": exc.reason,
                "detail": str(exc),
                "unconfirmed": unconfirmed,
            },
        )
        self._in_flight.clear()
        self._send_offset = self.cursor
        # The next connect() closes the broken connection before opening a new one.
        self._set_connected(False)

    async def _disconnect(self) -> None:
        self._in_flight.clear()
        self._send_offset = self.cursor
        self._set_connected(False)
        await self.transport.close()

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        self.metrics.connected.set(1 if connected else 0)
