"""The audit service: the exchange sink, the journal, the sender, wired together.

Contract for the gateway (see docs/audit.md for the wiring):

* :meth:`AuditService.observe` is an :class:`~gateway.exchange.ExchangeSink`. It builds the
  messages, appends them to the journal and returns: one ``write(2)`` per message, no
  ``fsync``, no network, never an exception. A full journal or a failing disk drops the
  message (counted in ``mado_gateway_audit_dropped_total``, logged); the request is never
  blocked or failed by audit.
* :meth:`AuditService.security_alert` does the same for a Security Alert.
* :meth:`AuditService.start` opens the journal (raising
  :class:`~gateway.audit.errors.JournalError` when it cannot be used, so the gateway does not
  serve without an audit trail), journals Application Start and starts the sender and the
  group-commit task.
* :meth:`AuditService.stop` journals Application Stop, waits up to ``stop_timeout_s`` for the
  sender to confirm everything, then stops; whatever is left is sent by the next process.
* :meth:`AuditService.ready` is a readiness check: None, or why the journal cannot be written.

Crossing the journal cap (PS3.15 A.5.3 "Security Alert", type 110133 Audit Recording
Stopped) is announced once per crossing, in the reserve the journal keeps for it (Application
Start and Stop may use the reserve too, being rare and telling), logged, and
shown by ``mado_gateway_audit_journal_full``; when the backlog falls below 90 % of the cap,
110134 Audit Recording Started follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import socket
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from gateway.audit import messages
from gateway.audit.errors import JournalError, JournalFull
from gateway.audit.journal import Journal
from gateway.audit.messages import AlertKind
from gateway.audit.metrics import AuditMetrics
from gateway.audit.model import AuditMessage, Outcome
from gateway.audit.render import render
from gateway.audit.sender import Sender
from gateway.audit.settings import AuditSettings, TransportKind
from gateway.audit.syslog import SyslogHeader, format_message
from gateway.audit.transports import (
    FileTransport,
    TlsTransport,
    Transport,
    UdpTransport,
    client_tls_context,
)
from gateway.exchange import Exchange
from routing.model import Identity

__all__ = ["AuditService", "build_transport"]

log = logging.getLogger("mado_gateway.audit")

_NOTICE = 5
_WARNING = 4
_RESUME_FRACTION = 0.9


def build_transport(settings: AuditSettings) -> Transport:
    """The transport ``settings`` name. Raises ``OSError``/``ssl.SSLError`` when the TLS
    material cannot be loaded."""
    if settings.transport is TransportKind.TLS and settings.tls is not None:
        tls = settings.tls
        context = client_tls_context(
            ca_file=tls.ca_file, cert_file=tls.cert_file, key_file=tls.key_file
        )
        return TlsTransport(
            tls.host,
            tls.port,
            context,
            server_name=tls.server_name,
            connect_timeout_s=tls.connect_timeout_s,
        )
    if settings.transport is TransportKind.UDP and settings.udp is not None:
        return UdpTransport(settings.udp.host, settings.udp.port)
    return FileTransport(settings.file.path)


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
        self.settings = settings
        self.identity = identity
        self.metrics = AuditMetrics(registry)
        self.journal = Journal(
            settings.journal.directory,
            max_bytes=settings.journal.max_bytes,
            segment_bytes=settings.journal.segment_bytes,
        )
        self._transport = transport
        self._header = SyslogHeader(
            hostname=settings.syslog.hostname or socket.gethostname(),
            app_name=settings.syslog.app_name,
            procid=str(os.getpid()),
        )
        self._sender: Sender | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._write_error: str | None = None
        self._over_cap = False
        self._dropped_while_full = 0

    # -- the sinks ---------------------------------------------------------------------

    def observe(self, exchange: Exchange) -> None:
        """Journal the 110104 messages of a finished exchange. Never raises."""
        try:
            built = messages.instances_transferred(exchange, self.identity)
        except Exception:
            log.exception(
                "audit message could not be built", extra={"request_id": exchange.request_id}
            )
            self.metrics.dropped.labels("build-error").inc()
            return
        for message in built:
            self._record(message, "instances-transferred")

    def security_alert(
        self, kind: AlertKind, target: str, description: str, *, performer: str | None = None
    ) -> None:
        """Journal a Security Alert (110113) about ``target``. Never raises."""
        try:
            message = messages.security_alert(
                self.identity,
                kind=kind,
                target=target,
                description=description,
                at=datetime.now(UTC),
                reporter=self.identity.audit_source_id,
                performer=performer,
            )
        except Exception:
            log.exception("security alert could not be built")
            self.metrics.dropped.labels("build-error").inc()
            return
        self._record(message, "security-alert", reserved=kind is AlertKind.AUDIT_STOPPED)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the journal, journal Application Start, start sending.

        Raises :class:`JournalError` when the journal cannot be opened; ``OSError`` or
        ``ssl.SSLError`` when the TLS material cannot be loaded.
        """
        await asyncio.to_thread(self.journal.open)
        self._update_gauges()
        transport = self._transport or build_transport(self.settings)
        settle_s = self.settings.tls.settle_s if self.settings.tls is not None else 0.0
        if self.settings.transport is not TransportKind.TLS:
            settle_s = 0.0
        self._sender = Sender(
            self.journal,
            transport,
            self.metrics,
            backoff_initial_s=self.settings.retry.initial_s,
            backoff_max_s=self.settings.retry.max_s,
            settle_s=settle_s,
            on_commit=self._committed,
        )
        self._record(self._application(started=True), "application-activity", reserved=True)
        self._tasks = [
            asyncio.create_task(self._sender.run(), name="audit-sender"),
            asyncio.create_task(self._group_commit(), name="audit-fsync"),
        ]
        log.info(
            "audit started",
            extra={
                "transport": self.settings.transport.value,
                "backlog_messages": self.journal.pending_records,
            },
        )

    async def stop(self) -> None:
        """Journal Application Stop, flush for at most ``stop_timeout_s``, close."""
        if not self._tasks:
            return
        self._record(self._application(started=False), "application-activity", reserved=True)
        assert self._sender is not None
        flushed = await self._sender.flush(self.settings.stop_timeout_s)
        if not flushed:
            log.warning(
                "audit backlog not confirmed at stop; the next start sends it",
                extra={"backlog_messages": self.journal.pending_records},
            )
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await asyncio.to_thread(self.journal.close)

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

    def _record(self, message: AuditMessage, event: str, *, reserved: bool = False) -> bool:
        """Render, frame and journal one message; True when it is in the journal."""
        try:
            severity = _WARNING if message.event.outcome is not Outcome.SUCCESS else _NOTICE
            if event != "security-alert":
                severity = _NOTICE
            payload = format_message(
                render(message),
                header=self._header,
                timestamp=datetime.now(UTC),
                severity=severity,
            )
        except Exception:
            log.exception("audit message could not be rendered")
            self.metrics.dropped.labels("build-error").inc()
            return False
        try:
            self.journal.append(payload, reserved=reserved)
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
        if self._write_error is not None:
            log.info("audit journal writable again")
            self._write_error = None
        self.metrics.journaled.labels(event).inc()
        self._update_gauges()
        if self._sender is not None:
            self._sender.wake()
        return True

    def _cap_crossed(self) -> None:
        self._over_cap = True
        self.metrics.journal_full.set(1)
        log.error(
            "audit journal cap reached; new audit messages are dropped until the repository "
            "catches up",
            extra={
                "max_bytes": self.journal.max_bytes,
                "backlog_messages": self.journal.pending_records,
            },
        )
        self.security_alert(
            AlertKind.AUDIT_STOPPED,
            f"file://{os.path.abspath(self.journal.directory)}",
            f"audit journal reached its cap of {self.journal.max_bytes} bytes; "
            "audit messages are being dropped",
        )

    def _committed(self) -> None:
        self._update_gauges()
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
        self.metrics.queue_depth.set(self.journal.pending_records)
        self.metrics.queue_bytes.set(self.journal.pending_bytes)

    async def _group_commit(self) -> None:
        interval = self.settings.journal.fsync_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.journal.sync)
            except OSError as exc:
                log.error("audit journal fsync failed", extra={"error": str(exc)})
                self._write_error = exc.strerror or str(exc)
