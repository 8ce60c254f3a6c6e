"""Audit metrics, registered on an injected ``CollectorRegistry`` (design.md §7).

Names start ``mado_gateway_audit_``; counters end in ``_total``; label values come from the
fixed tuples below and the configured destination names, all created at start so dashboards
see zeros rather than gaps. Journal-wide metrics have no ``destination`` label:
``queue_depth`` and ``queue_bytes`` are the backlog of the slowest destination, the one the
cap applies to.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = [
    "DROP_REASONS",
    "EVENTS",
    "FAILURE_REASONS",
    "SKIP_REASONS",
    "AuditMetrics",
    "DestinationMetrics",
]

_PREFIX = "mado_gateway_audit"
EVENTS = (
    "begin-transferring",
    "instances-transferred",
    "instances-accessed",
    "application-activity",
    "security-alert",
)
FAILURE_REASONS = ("connect", "tls", "timeout", "closed", "write")
DROP_REASONS = ("journal-full", "journal-error", "build-error")
SKIP_REASONS = ("undecodable", "unrenderable", "not-applicable")


@dataclass(frozen=True, slots=True)
class DestinationMetrics:
    """The metrics of one destination, labels already applied."""

    sent: Counter
    resent: Counter
    failed: dict[str, Counter]
    skipped: dict[str, Counter]
    connected: Gauge
    queue_depth: Gauge
    queue_bytes: Gauge


class AuditMetrics:
    """Every audit metric; one instance per :class:`~gateway.audit.service.AuditService`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.queue_depth = Gauge(
            f"{_PREFIX}_queue_depth",
            "Audit messages journalled and not yet confirmed by the slowest destination.",
            registry=registry,
            multiprocess_mode="livesum",  # workers: serve --workers
        )
        self.queue_bytes = Gauge(
            f"{_PREFIX}_queue_bytes",
            "Journal bytes not yet confirmed by the slowest destination (the cap applies).",
            registry=registry,
            multiprocess_mode="livesum",  # workers: serve --workers
        )
        self.journaled = Counter(
            f"{_PREFIX}_journaled",
            "Audit messages appended to the journal, by event.",
            ("event",),
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
            multiprocess_mode="livemax",  # workers: serve --workers
        )
        self.journal_syncs = Counter(
            f"{_PREFIX}_journal_syncs",
            "Group commits: fdatasync calls on journal segments, one per batch of appends.",
            registry=registry,
        )
        self.sent = Counter(
            f"{_PREFIX}_sent",
            "Audit messages confirmed written to a destination.",
            ("destination",),
            registry=registry,
        )
        self.resent = Counter(
            f"{_PREFIX}_resent",
            "Audit messages written again after a connection failed before they were "
            "confirmed (each may be a duplicate at the destination).",
            ("destination",),
            registry=registry,
        )
        self.failed = Counter(
            f"{_PREFIX}_send_failures",
            "Failed connections or writes to a destination, by reason.",
            ("destination", "reason"),
            registry=registry,
        )
        self.skipped = Counter(
            f"{_PREFIX}_skipped",
            "Journal records a destination passed over without sending, by reason.",
            ("destination", "reason"),
            registry=registry,
        )
        self.connected = Gauge(
            f"{_PREFIX}_connected",
            "1 while the destination's sender holds a connection.",
            ("destination",),
            registry=registry,
            multiprocess_mode="livemin",  # workers: serve --workers
        )
        self.destination_queue_depth = Gauge(
            f"{_PREFIX}_destination_queue_depth",
            "Audit messages journalled and not yet confirmed by the destination.",
            ("destination",),
            registry=registry,
            multiprocess_mode="livesum",  # workers: serve --workers
        )
        self.destination_queue_bytes = Gauge(
            f"{_PREFIX}_destination_queue_bytes",
            "Journal bytes not yet confirmed by the destination.",
            ("destination",),
            registry=registry,
            multiprocess_mode="livesum",  # workers: serve --workers
        )
        for event in EVENTS:
            self.journaled.labels(event)
        for reason in DROP_REASONS:
            self.dropped.labels(reason)

    def destination(self, name: str) -> DestinationMetrics:
        """The metrics of destination ``name`` (a configured name: bounded), created now."""
        return DestinationMetrics(
            sent=self.sent.labels(name),
            resent=self.resent.labels(name),
            failed={reason: self.failed.labels(name, reason) for reason in FAILURE_REASONS},
            skipped={reason: self.skipped.labels(name, reason) for reason in SKIP_REASONS},
            connected=self.connected.labels(name),
            queue_depth=self.destination_queue_depth.labels(name),
            queue_bytes=self.destination_queue_bytes.labels(name),
        )
