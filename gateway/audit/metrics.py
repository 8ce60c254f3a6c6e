"""Audit metrics, registered on an injected ``CollectorRegistry`` (design.md §7).

Names start ``mado_gateway_audit_``; counters end in ``_total``; label values come from the
fixed tuples below, all created at start so dashboards see zeros rather than gaps.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["DROP_REASONS", "EVENTS", "FAILURE_REASONS", "AuditMetrics"]

_PREFIX = "mado_gateway_audit"
EVENTS = ("instances-transferred", "application-activity", "security-alert")
FAILURE_REASONS = ("connect", "tls", "timeout", "closed", "write")
DROP_REASONS = ("journal-full", "journal-error", "build-error")


class AuditMetrics:
    """Every audit metric; one instance per :class:`~gateway.audit.service.AuditService`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queue_depth = Gauge(
            f"{_PREFIX}_queue_depth",
            "Audit messages journalled and not yet confirmed by the repository.",
            registry=registry,
        )
        self.queue_bytes = Gauge(
            f"{_PREFIX}_queue_bytes",
            "Journal bytes not yet confirmed by the repository (the cap applies to this).",
            registry=registry,
        )
        self.journaled = Counter(
            f"{_PREFIX}_journaled",
            "Audit messages appended to the journal, by event.",
            ("event",),
            registry=registry,
        )
        self.sent = Counter(
            f"{_PREFIX}_sent",
            "Audit messages confirmed written to the repository.",
            registry=registry,
        )
        self.resent = Counter(
            f"{_PREFIX}_resent",
            "Audit messages written again after a connection failed before they were "
            "confirmed (each may be a duplicate at the repository).",
            registry=registry,
        )
        self.failed = Counter(
            f"{_PREFIX}_send_failures",
            "Failed connections or writes to the repository, by reason.",
            ("reason",),
            registry=registry,
        )
        self.dropped = Counter(
            f"{_PREFIX}_dropped",
            "Audit messages lost before reaching the journal, by reason.",
            ("reason",),
            registry=registry,
        )
        self.journal_full = Gauge(
            f"{_PREFIX}_journal_full",
            "1 while the journal is at its cap and new audit messages are dropped.",
            registry=registry,
        )
        self.connected = Gauge(
            f"{_PREFIX}_connected",
            "1 while the sender holds a connection to the repository.",
            registry=registry,
        )
        for event in EVENTS:
            self.journaled.labels(event)
        for reason in FAILURE_REASONS:
            self.failed.labels(reason)
        for reason in DROP_REASONS:
            self.dropped.labels(reason)
