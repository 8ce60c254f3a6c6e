"""A destination = a transport and a renderer, built from its settings.

The journal holds neutral records (:mod:`gateway.audit.record`); a destination's renderer
turns one into the bytes its transport carries, at send time. Every transport today
carries RFC 5424 syslog messages (:class:`SyslogRenderer`); a FHIR AuditEvent feed would
bring a renderer of its own, and would return None for version-0 records (already rendered
syslog frames it cannot use), which its sender then skips and counts.
"""

from __future__ import annotations

import ssl
from typing import Protocol

from gateway.audit.balp import render_fhir
from gateway.audit.fhirfeed import FhirTransport
from gateway.audit.model import Outcome
from gateway.audit.record import AuditRecord, LegacyFrame
from gateway.audit.render import render
from gateway.audit.settings import (
    DestinationSettings,
    FhirSettings,
    SyslogSettings,
    TransportKind,
)
from gateway.audit.syslog import SyslogHeader, format_message
from gateway.audit.transports import (
    FileTransport,
    TlsTransport,
    Transport,
    UdpTransport,
    client_tls_context,
)

__all__ = [
    "Renderer",
    "SyslogRenderer",
    "build_transport",
    "renderer_for",
    "settle_time",
    "syslog_renderer",
]

_NOTICE = 5
_WARNING = 4


class Renderer(Protocol):
    """Bytes for one journalled record, or None when it has no form for this destination.
    May raise (a record that cannot be rendered is skipped, counted and logged); must be
    safe to call from a worker thread."""

    def __call__(self, entry: AuditRecord | LegacyFrame, /) -> bytes | None: ...


class SyslogRenderer:
    """RFC 5424 messages (ITI-20): ``<85>1 TIMESTAMP HOST APP PROCID IHE+RFC-3881 - BOM XML``.

    TIMESTAMP and PROCID are when and by which process the record was journalled, so a
    record sent after a restart still names the process that saw the event. Security Alerts
    other than a success are severity 4 (``<84>``), everything else 5. Version-0 records are
    rendered frames already and go out verbatim.
    """

    def __init__(self, *, hostname: str, app_name: str) -> None:
        self.hostname = hostname
        self.app_name = app_name

    def __call__(self, entry: AuditRecord | LegacyFrame, /) -> bytes:
        if isinstance(entry, LegacyFrame):
            return entry.message
        message = entry.message
        severity = _NOTICE
        if entry.event == "security-alert" and message.event.outcome is not Outcome.SUCCESS:
            severity = _WARNING
        header = SyslogHeader(
            hostname=self.hostname, app_name=self.app_name, procid=str(entry.process_id)
        )
        return format_message(
            render(message), header=header, timestamp=entry.recorded_at, severity=severity
        )


def syslog_renderer(settings: SyslogSettings, default_hostname: str) -> SyslogRenderer:
    return SyslogRenderer(
        hostname=settings.hostname or default_hostname, app_name=settings.app_name
    )


def build_transport(destination: DestinationSettings) -> Transport:
    """The transport ``destination`` names. Raises ``OSError``/``ssl.SSLError`` when the TLS
    material cannot be loaded."""
    if destination.transport is TransportKind.TLS and destination.tls is not None:
        tls = destination.tls
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
    if destination.transport is TransportKind.FHIR and destination.fhir is not None:
        return _fhir_transport(destination.fhir)
    if destination.transport is TransportKind.UDP and destination.udp is not None:
        return UdpTransport(destination.udp.host, destination.udp.port)
    if destination.file is None:
        raise ValueError(f"destination {destination.name} has no transport settings")
    return FileTransport(destination.file.path)


def renderer_for(destination: DestinationSettings, syslog: Renderer) -> Renderer:
    """The renderer of ``destination``: FHIR AuditEvents for the BALP feed, else ``syslog``."""
    if destination.transport is TransportKind.FHIR:
        return render_fhir
    return syslog


def _fhir_transport(settings: FhirSettings) -> FhirTransport:
    context = None
    if settings.ca_file is not None or settings.cert_file is not None:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.ca_file)
        if settings.cert_file is not None and settings.key_file is not None:
            context.load_cert_chain(settings.cert_file, settings.key_file)
    return FhirTransport(
        settings.base_url,
        context=context,
        connect_timeout_s=settings.connect_timeout_s,
        request_timeout_s=settings.request_timeout_s,
    )


def settle_time(destination: DestinationSettings) -> float:
    """How long a TCP-acknowledged batch must stay on a healthy connection to count as
    stored (see :mod:`gateway.audit.sender`); 0 where the transport confirms by itself."""
    if destination.transport is TransportKind.TLS and destination.tls is not None:
        return destination.tls.settle_s
    return 0.0
