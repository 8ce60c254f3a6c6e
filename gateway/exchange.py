"""The record of one request's crossing, and the sinks that consume it.

The handler fills an :class:`Exchange` as the request goes; every :class:`ExchangeSink`
receives it exactly once, when it is sealed (:func:`gateway.middleware.seal`). A relay seals
it *before* its last bytes go out, so the audit record is in the journal before the client
can see a complete answer (design.md §6); anything else is sealed when the handler returns,
before aiohttp sends the response. Metrics and audit are sinks. A sink must not block: the
audit sink only appends to its journal, the metrics sink only counts.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Exchange", "ExchangeSink", "InstanceSeen", "Outcome"]


class Outcome(enum.StrEnum):
    """How the exchange ended, as far as the client is concerned (a bounded metric label)."""

    COMPLETE = "complete"  # the whole upstream answer reached the client
    REFUSED = "refused"  # answered with a problem before any upstream contact
    FAILED = "failed"  # answered with a problem after trying the upstream
    ABORTED = "aborted"  # connection aborted mid-body (upstream failure or client gone)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceSeen:
    """Identity of one DICOM instance relayed, read from its header as the part streamed by."""

    sop_class_uid: str | None
    sop_instance_uid: str | None
    study_uid: str | None
    series_uid: str | None
    patient_id: str | None
    patient_id_issuer: str | None  # Issuer of Patient ID (0010,0021)
    patient_name: str | None


@dataclass(slots=True, kw_only=True)
class Exchange:
    """Mutable while the request runs; read-only by convention once handed to the sinks."""

    request_id: str
    method: str
    path: str
    client: str | None  # the peer's address
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    route_kind: str = "none"  # relay | source | retrieve-url | none
    resource: str = "none"  # routing.rad160.ResourceKind value, or none
    upstream: str | None = None
    upstream_url: str | None = None
    home_community_id: str | None = None
    retrieve_location_uid: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    instance_uid: str | None = None
    status: int = 0
    upstream_status: int | None = None
    bytes_sent: int = 0
    first_byte_s: float | None = None
    duration_s: float | None = None
    outcome: Outcome = Outcome.FAILED
    error: str | None = None  # a bounded reason, never an upstream message
    attempts: int = 0
    attempt_results: list[str] = field(default_factory=list)  # "2xx"…"5xx" or an error reason
    instances: list[InstanceSeen] = field(default_factory=list)
    client_subject: str | None = None  # its TLS client certificate subject, when verified
    sealed: bool = False  # handed to the sinks; nothing may change it afterwards

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def mark_first_byte(self) -> None:
        if self.first_byte_s is None:
            self.first_byte_s = self.elapsed()

    def finish(self) -> None:
        self.duration_s = self.elapsed()


class ExchangeSink(Protocol):
    """Receives each finished exchange exactly once. Must return quickly and never raise."""

    def observe(self, exchange: Exchange) -> None: ...
