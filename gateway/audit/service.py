"""The audit service: the exchange sink, the journal, the destinations, wired together.

Contract for the gateway (see docs/audit.md for the wiring):

* :meth:`AuditService.observe` is an :class:`~gateway.exchange.ExchangeSink`. It builds the
  messages, encodes each as a neutral record (:mod:`gateway.audit.record`) and appends it to
  the journal: one ``write(2)`` per message, no ``fsync``, no rendering, no network, never an
  exception. When it returns the records are in the kernel, so the gateway may then write
  the terminating chunk. A full journal or a failing disk drops the message (counted in
  ``mado_gateway_audit_dropped_total``, logged); the request is never blocked or failed by
  audit.
* :meth:`AuditService.answered` is a :class:`~gateway.exchange.LegSink`: when the first leg
  of an exchange is about to answer, before its first byte, it journals the Begin
  Transferring (110102) the same way, so a retrieval cut by a crash is on record.
* :meth:`AuditService.security_alert` does the same for a Security Alert.
* :meth:`AuditService.start` opens the journal (raising
  :class:`~gateway.audit.errors.JournalError` when it cannot be used, so the gateway does not
  serve without an audit trail), journals Application Start and starts one sender per
  destination and the group-commit thread.
* :meth:`AuditService.stop` journals Application Stop, waits up to ``stop_timeout_s`` for
  every destination to confirm everything, then stops; whatever is left is sent by the next
  process, each destination from its own cursor.
* :meth:`AuditService.ready` is a readiness check: None, or why the journal cannot be written.

Threads: the request loop builds, encodes and appends (one ``write(2)`` per message); the
senders run on an event loop of their own in one thread (:mod:`gateway.audit.sendloop`:
connections, TLS, reading, decoding, rendering), with journal reads in worker threads; one
group-commit thread flushes the journal, stores the cursors and deletes what every
destination has passed. Nothing but the append runs on the request loop.

Crossing the journal cap (PS3.15 A.5.3 "Security Alert", type 110133 Audit Recording
Stopped) is announced once per crossing, in the reserve the journal keeps for it (Application
Start and Stop may use the reserve too, being rare and telling), logged, and
shown by ``mado_gateway_audit_journal_full``; when the slowest destination's backlog falls
below 90 % of the cap, 110134 Audit Recording Started follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from gateway.audit import messages
from gateway.audit.destinations import (
    build_transport,
    renderer_for,
    settle_time,
    syslog_renderer,
)
from gateway.audit.errors import JournalError, JournalFull
from gateway.audit.groupcommit import GroupCommit
from gateway.audit.journal import Journal
from gateway.audit.messages import AlertKind
from gateway.audit.metrics import AuditMetrics, DestinationMetrics
from gateway.audit.model import AuditMessage
from gateway.audit.recent import RecentRecords
from gateway.audit.record import AuditRecord, check_version, encode
from gateway.audit.retrieves import messages_for
from gateway.audit.sender import Sender
from gateway.audit.sendloop import SendLoop
from gateway.audit.settings import AuditSettings
from gateway.audit.transfers import BEGIN_TRANSFERRING_EVENT, begin_transferring
from gateway.audit.transports import Transport
from gateway.exchange import Exchange, Leg
from routing.model import Identity

__all__ = ["AuditService"]

log = logging.getLogger("mado_gateway.audit")

_RESUME_FRACTION = 0.9
LINGER_S = 0.2
"""How long the senders let appends accumulate before a batch (:mod:`gateway.audit.sendloop`):
the delay an audit message may add before it leaves, for far fewer GIL handovers."""


class AuditService:
    """ATNA audit for one gateway process; see the module docstring for the contract."""

    def __init__(
        self,
        settings: AuditSettings,
        identity: Identity,
        *,
        registry: CollectorRegistry,
        transport: Transport | None = None,
    ) -> None:
        """``transport``, when given, replaces the first destination's (tests)."""
        self.settings = settings
        self.identity = identity
        self.metrics = AuditMetrics(registry)
        self.journal = Journal(
            settings.journal.directory,
            cursors=[destination.name for destination in settings.destinations],
            max_bytes=settings.journal.max_bytes,
            segment_bytes=settings.journal.segment_bytes,
            check=check_version,
        )
        self._transport = transport
        self.host = settings.syslog.hostname or socket.gethostname()
        """The gateway's network access point in its messages (its machine name)."""
        self._renderer = syslog_renderer(settings.syslog, self.host)
        self._recent = RecentRecords()
        self._senders: list[Sender] = []
        self._gauges: dict[str, DestinationMetrics] = {}
        self._send_loop: SendLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._group_commit: GroupCommit | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()
        self._write_error: str | None = None
        self._over_cap = False
        self._dropped_while_full = 0

    # -- the sinks ---------------------------------------------------------------------

    def observe(self, exchange: Exchange) -> None:
        """Journal the messages of a finished exchange (:func:`~gateway.audit.retrieves.
        messages_for`: 110104 for a RAD-160 exchange; 110103 per SOAP leg and 110104 for a
        RAD-69 or RAD-75 one). Never raises."""
        try:
            # One leg's messages at a time: built, journalled, let go (messages_for is lazy).
            for event, message in messages_for(exchange, self.identity, host=self.host):
                self._record(message, event, request_id=exchange.request_id)
        except Exception:
            log.exception(
                "audit message could not be built", extra={"request_id": exchange.request_id}
            )
            self.metrics.dropped.labels("build-error").inc()

    def answered(self, exchange: Exchange, leg: Leg) -> None:
        """Journal the Begin Transferring (110102) of ``exchange`` when ``leg`` is its first
        leg to answer (:func:`~gateway.audit.transfers.begin_transferring`); the caller
        writes the leg's first byte after this returns. Never raises."""
        if any(other.answered for other in exchange.legs if other is not leg):
            return
        try:
            built = begin_transferring(exchange, leg, self.identity, host=self.host)
        except Exception:
            log.exception(
                "audit message could not be built", extra={"request_id": exchange.request_id}
            )
            self.metrics.dropped.labels("build-error").inc()
            return
        for message in built:
            self._record(message, BEGIN_TRANSFERRING_EVENT, request_id=exchange.request_id)

    def security_alert(
        self,
        kind: AlertKind,
        target: str,
        description: str,
        *,
        performer: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """Journal a Security Alert (110113) about ``target``, naming the request being
        served when ``request_id`` is given. Never raises."""
        try:
            message = messages.security_alert(
                self.identity,
                kind=kind,
                target=target,
                description=description,
                at=datetime.now(UTC),
                reporter=self.identity.audit_source_id,
                performer=performer,
                request_id=request_id,
            )
        except Exception:
            log.exception("security alert could not be built")
            self.metrics.dropped.labels("build-error").inc()
            return
        self._record(
            message,
            "security-alert",
            reserved=kind is AlertKind.AUDIT_STOPPED,
            request_id=request_id,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the journal, journal Application Start, start sending.

        Raises :class:`JournalError` when the journal cannot be opened (a record of a newer
        release included: :class:`~gateway.audit.errors.RecordError`); ``OSError`` or
        ``ssl.SSLError`` when the TLS material cannot be loaded.
        """
        self._recent.clear()
        await asyncio.to_thread(self.journal.open)
        self._loop = asyncio.get_running_loop()
        self._pid = os.getpid()
        try:
            transports = [
                (self._transport if index == 0 and self._transport else build_transport(d))
                for index, d in enumerate(self.settings.destinations)
            ]
        except BaseException:
            await asyncio.to_thread(self.journal.close)
            raise
        self._executor = ThreadPoolExecutor(
            max_workers=len(transports), thread_name_prefix="audit-read"
        )
        self._gauges = {
            destination.name: self.metrics.destination(destination.name)
            for destination in self.settings.destinations
        }
        executor = self._executor

        def build() -> list[Sender]:  # in the senders' thread: what it makes belongs there
            return [
                Sender(
                    self.journal,
                    destination.name,
                    transport,
                    renderer_for(destination, self._renderer),
                    self._gauges[destination.name],
                    executor=executor,
                    backoff_initial_s=self.settings.retry.initial_s,
                    backoff_max_s=self.settings.retry.max_s,
                    settle_s=settle_time(destination),
                    linger_s=LINGER_S,
                    on_commit=self._committed_elsewhere,
                    decode=self._recent.decode,
                )
                for destination, transport in zip(
                    self.settings.destinations, transports, strict=True
                )
            ]

        self._group_commit = GroupCommit(
            self.journal,
            interval_s=self.settings.journal.fsync_interval_s,
            on_sync=self._synced,
            on_error=self._sync_failed,
        )
        self._group_commit.start()
        self._update_gauges()
        self._record(self._application(started=True), "application-activity", reserved=True)
        send_loop = SendLoop(linger_s=LINGER_S)
        try:
            self._senders = list(await asyncio.to_thread(send_loop.start, build))
        except BaseException:
            await asyncio.to_thread(self._group_commit.stop)
            self._group_commit = None
            await asyncio.to_thread(self.journal.close)
            raise
        self._send_loop = send_loop
        log.info(
            "audit started",
            extra={
                "destinations": [
                    f"{d.name}:{d.transport.value}" for d in self.settings.destinations
                ],
                "backlog_messages": {
                    name: self.journal.pending_records_of(name) for name in self._gauges
                },
            },
        )

    async def stop(self) -> None:
        """Journal Application Stop, flush for at most ``stop_timeout_s``, close."""
        send_loop = self._send_loop
        if send_loop is None:
            return
        self._record(self._application(started=False), "application-activity", reserved=True)
        deadline = asyncio.get_running_loop().time() + self.settings.stop_timeout_s
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            flushed = await send_loop.flush(max(remaining, 0.0))
            # What the senders' commits set off on this loop (the cap's "resumed" alert) ran
            # before the flush's answer; if it journalled anything, flush that too.
            if not all(flushed) or self.journal.pending_bytes == 0 or remaining <= 0:
                break
        for sender, done in zip(self._senders, flushed, strict=True):
            if not done:
                log.warning(
                    "audit backlog not confirmed at stop; the next start sends it",
                    extra={
                        "destination": sender.name,
                        "backlog_messages": self.journal.pending_records_of(sender.name),
                    },
                )
        await asyncio.to_thread(send_loop.stop)
        self._send_loop = None
        if self._executor is not None:  # a read may still run: let it end before closing
            await asyncio.to_thread(self._executor.shutdown, wait=True)
            self._executor = None
        for sender in self._senders:
            sender.release()
        if self._group_commit is not None:
            await asyncio.to_thread(self._group_commit.stop)
            self._group_commit = None
        await asyncio.to_thread(self.journal.close)

    def reopen_files(self) -> int:
        """Have every file destination reopen its file before its next write (SIGHUP, after
        logrotate moved it); returns how many were told."""
        told = 0
        for sender in self._senders:
            reopen = getattr(sender.transport, "reopen", None)
            if callable(reopen):
                reopen()
                told += 1
        return told

    def ready(self) -> str | None:
        """None when audit messages can be journalled, else a short reason."""
        if not self.journal.is_open:
            return "audit journal not open"
        if self._write_error is not None:
            return f"audit journal not writable: {self._write_error}"
        return None

    # -- internals ---------------------------------------------------------------------

    def _application(self, *, started: bool) -> AuditMessage:
        try:
            launcher: str | None = getpass.getuser()
        except (KeyError, OSError):
            launcher = None
        return messages.application_activity(
            self.identity,
            started=started,
            at=datetime.now(UTC),
            application=self.settings.syslog.app_name,
            process_id=str(os.getpid()),
            launcher=launcher,
        )

    def _record(
        self,
        message: AuditMessage,
        event: str,
        *,
        reserved: bool = False,
        request_id: str | None = None,
    ) -> bool:
        """Encode and journal one message; True when it is in the journal."""
        record = AuditRecord(
            event=event,
            recorded_at=datetime.now(UTC),
            process_id=self._pid,
            request_id=request_id,
            message=message,
        )
        try:
            payload = encode(record)
        except Exception:
            log.exception("audit message could not be encoded")
            self.metrics.dropped.labels("build-error").inc()
            return False
        try:
            end = self.journal.append(payload, reserved=reserved)
        except JournalFull:
            self.metrics.dropped.labels("journal-full").inc()
            self._dropped_while_full += 1
            if not self._over_cap:
                self._cap_crossed()
            return False
        except JournalError as exc:
            self.metrics.dropped.labels("journal-error").inc()
            if self._write_error is None:
                log.error(
                    "audit journal write failed; audit messages are being lost",
                    extra={"error": str(exc)},
                )
            self._write_error = os.strerror(exc.errno) if exc.errno else str(exc)
            return False
        self._recent.note(end, record, len(payload))
        if self._write_error is not None:
            log.info("audit journal writable again")
            self._write_error = None
        self.metrics.journaled.labels(event).inc()
        self._update_gauges()
        if self._group_commit is not None:
            self._group_commit.kick()
        if self._send_loop is not None:
            self._send_loop.wake()
        return True

    def _cap_crossed(self) -> None:
        self._over_cap = True
        self.metrics.journal_full.set(1)
        log.error(
            "audit journal cap reached; new audit messages are dropped until the slowest "
            "destination catches up",
            extra={
                "max_bytes": self.journal.max_bytes,
                "backlog_messages": self.journal.pending_records,
                "slowest": self._slowest(),
            },
        )
        self.security_alert(
            AlertKind.AUDIT_STOPPED,
            f"file://{os.path.abspath(self.journal.directory)}",
            f"audit journal reached its cap of {self.journal.max_bytes} bytes; "
            "audit messages are being dropped",
        )

    def _slowest(self) -> str | None:
        names = self.journal.cursor_names if self.journal.is_open else ()
        return min(names, key=self.journal.cursor, default=None)

    def _committed_elsewhere(self) -> None:  # the senders' thread, after a cursor moved
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._committed)

    def _committed(self) -> None:
        self._update_gauges()
        if self._group_commit is not None:
            self._group_commit.kick()
        if (
            self._over_cap
            and self.journal.pending_bytes < self.journal.max_bytes * _RESUME_FRACTION
        ):
            self._over_cap = False
            self.metrics.journal_full.set(0)
            dropped, self._dropped_while_full = self._dropped_while_full, 0
            log.warning("audit journal below its cap again", extra={"dropped": dropped})
            self.security_alert(
                AlertKind.AUDIT_RESUMED,
                f"file://{os.path.abspath(self.journal.directory)}",
                f"audit journal accepts messages again; {dropped} were dropped",
            )

    def _update_gauges(self) -> None:
        journal = self.journal
        self.metrics.queue_depth.set(journal.pending_records)
        self.metrics.queue_bytes.set(journal.pending_bytes)
        for name, metrics in self._gauges.items():
            metrics.queue_depth.set(journal.pending_records_of(name))
            metrics.queue_bytes.set(journal.pending_bytes_of(name))

    def _synced(self, flushed: int) -> None:  # group-commit thread
        if flushed:
            self.metrics.journal_syncs.inc(flushed)

    def _sync_failed(self, exc: JournalError) -> None:  # group-commit thread
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._note_sync_failure, exc)

    def _note_sync_failure(self, exc: JournalError) -> None:
        log.error("audit journal sync failed", extra={"error": str(exc)})
        self._write_error = os.strerror(exc.errno) if exc.errno else str(exc)
