"""The ``audit`` section of the configuration file.

::

    audit:
      destinations:               # each with its own cursor in the journal and its own sender
        - name: arr               # 1-32 of a-z 0-9 _ -: names cursors/<name> and metric labels
          transport: tls          # file | tls | udp
          tls:   {host: arr.example.org, port: 6514, ca_file: …, cert_file: …, key_file: …,
                  server_name: arr.example.org, connect_timeout_s: 5, settle_s: 0.5}
        - name: local
          transport: file
          file:  {path: audit/audit.log}
        - {name: siem, transport: udp, udp: {host: siem.example.org, port: 514}}
        - {name: balp, transport: fhir, fhir: {base_url: https://fhir.example.org/R4/}}
      journal: {directory: audit/journal, max_bytes: 268435456, segment_bytes: 4194304,
                fsync_interval_s: 0.2}
      syslog:  {app_name: mado-gateway, hostname: gw1.example.org}
      retry:   {initial_s: 0.5, max_s: 30}
      stop_timeout_s: 5

The single-destination form of earlier releases stays valid and is shorthand for one
destination named after its transport::

    audit:
      transport: tls              # file (default) | tls | udp → destination "tls"
      file: {…}   tls: {…}   udp: {…}

A section uses one form or the other, never both. With no ``audit`` section the gateway
audits to a local file (destination ``file``), so it runs without an Audit Record Repository.
TLS is always mutual (PS3.15 A.6 requires node authentication), so its CA, certificate and
key are required. Relative paths are relative to the state directory
(``server.state_directory``, :mod:`gateway.service.config`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.audit.cursors import CURSOR_NAME
from routing.declare import Report, read, setting
from routing.kinds import Choice, Flag, Integer, ListOf, Number, Section, Text

__all__ = [
    "AuditSettings",
    "DestinationSettings",
    "FhirSettings",
    "FileSettings",
    "JournalSettings",
    "RetrySettings",
    "SyslogSettings",
    "TlsSettings",
    "TransportKind",
    "UdpSettings",
    "parse_audit_settings",
]


class TransportKind(enum.StrEnum):
    FILE = "file"
    TLS = "tls"
    UDP = "udp"
    FHIR = "fhir"  # IHE BALP AuditEvents POSTed to a FHIR server (destinations form only)


_TRANSPORT = Choice.of(TransportKind, fold=str.lower)
_PORT = Integer(maximum=65535)
_SHORTHAND_KEYS = ("transport", "file", "tls", "udp")


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSettings:
    """An audit log file on local disk: one RFC 5424 message a line."""

    path: str = setting(Text(label="file path"), "The file appended to.", default="audit/audit.log")


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    """RFC 5425 syslog over mutual TLS (PS3.15 A.6 requires node authentication), so the
    CA, certificate and key are required.

    ``settle_s``: see :mod:`gateway.audit.sender`."""

    host: str = setting(Text(label="host"), "The Audit Record Repository.", required=True)
    port: int = setting(_PORT, "Its port (RFC 5425 §4.1).", default=6514)
    ca_file: str = setting(Text(label="file path"), "CA bundle that verifies it.", required=True)
    cert_file: str = setting(Text(label="file path"), "This gateway's certificate.", required=True)
    key_file: str = setting(Text(label="file path"), "Its private key.", required=True)
    server_name: str | None = setting(
        Text(label="host"), "Name checked in its certificate; absent: host.", default=None
    )
    connect_timeout_s: float = setting(Number(), "Seconds to connect.", default=5.0)
    settle_s: float = setting(
        Number(exclusive=False),
        "Seconds a connection must hold after a batch for the batch to count as stored.",
        default=0.5,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpSettings:
    """RFC 5426 syslog over UDP: no acknowledgement, so prefer TLS where the ARR offers it."""

    host: str = setting(Text(label="host"), "The Audit Record Repository.", required=True)
    port: int = setting(_PORT, "Its port (RFC 5426 §3.3).", default=514)


@dataclass(frozen=True, slots=True, kw_only=True)
class FhirSettings:
    """The IHE BALP feed: each event as a FHIR R4 AuditEvent POSTed to ``base_url``
    (:mod:`gateway.audit.balp`, :mod:`gateway.audit.fhirfeed`). The feed goes over TLS
    (spec-digest checklist item 58: audit records carry PHI): ``base_url`` is https, and the
    server is verified with ``ca_file`` or the system store; ``cert_file`` and ``key_file``
    add a client certificate. An http ``base_url`` is refused unless ``allow_http`` says
    otherwise, for tests and closed networks."""

    base_url: str = setting(Text(label="URL"), "FHIR base URL of the server.", required=True)
    ca_file: str | None = setting(
        Text(label="file path"), "CA bundle that verifies it.", default=None
    )
    cert_file: str | None = setting(
        Text(label="file path"), "This gateway's certificate.", default=None
    )
    key_file: str | None = setting(Text(label="file path"), "Its private key.", default=None)
    connect_timeout_s: float = setting(Number(), "Seconds to connect.", default=5.0)
    request_timeout_s: float = setting(Number(), "Seconds one POST may take.", default=10.0)
    allow_http: bool = setting(
        Flag(),
        "Accept an http:// base_url (no TLS): for tests and closed networks only.",
        default=False,
    )

    def finish(self, report: Report) -> FhirSettings:
        if (self.cert_file is None) != (self.key_file is None):
            report.problem("cert_file", "cert_file and key_file go together")
        scheme = self.base_url.partition("://")[0].lower() if "://" in self.base_url else ""
        if scheme == "http" and not self.allow_http:
            report.problem(
                "base_url", "must be an https:// URL (the feed goes over TLS; see allow_http)"
            )
        elif scheme not in ("https", "http"):
            report.problem("base_url", "must be an https:// URL")
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalSettings:
    """The journal on local disk every audit event is written to first; each destination
    sends from its own cursor in it. ``max_bytes`` caps the unsent backlog of the slowest
    destination; ``fsync_interval_s`` is the group-commit period."""

    directory: str = setting(Text(label="directory"), "Where it lives.", default="audit/journal")
    max_bytes: int = setting(
        Integer(minimum=64 * 1024),
        "Unsent bytes at most; crossing it is alerted.",
        default=256 * 1024 * 1024,
    )
    segment_bytes: int = setting(
        Integer(minimum=64 * 1024), "Size of one journal file.", default=4 * 1024 * 1024
    )
    fsync_interval_s: float = setting(
        Number(), "Seconds between two fdatasync calls (one per batch).", default=0.2
    )


def _header_field(limit: int) -> Text:
    reason = f"must be at most {limit} printable ASCII characters without spaces"
    return Text(label="name", pattern=f"[!-~]{{1,{limit}}}", reason=reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyslogSettings:
    """RFC 5424 header fields of every audit message."""

    app_name: str = setting(_header_field(48), "APP-NAME.", default="mado-gateway")
    hostname: str | None = setting(
        _header_field(255), "HOSTNAME; absent: the machine's host name.", default=None
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySettings:
    """How a destination that failed is tried again: the wait doubles from ``initial_s`` up
    to ``max_s``."""

    initial_s: float = setting(Number(), "Seconds before the first retry.", default=0.5)
    max_s: float = setting(Number(), "Seconds between retries at most.", default=30.0)

    def finish(self, report: Report) -> RetrySettings:
        if self.max_s < self.initial_s:
            report.problem("max_s", "must not be less than initial_s")
        return self


def _check_transport(
    report: Report,
    transport: TransportKind,
    tls: TlsSettings | None,
    udp: UdpSettings | None,
    fhir: FhirSettings | None = None,
) -> None:
    """A tls, udp or fhir destination needs its settings."""
    checks = ((TransportKind.TLS, tls), (TransportKind.UDP, udp), (TransportKind.FHIR, fhir))
    for kind, settings in checks:
        if transport is kind and settings is None and not report.failed(kind.value):
            report.problem(kind.value, f"is required for transport {kind.value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DestinationSettings:
    """One place audit messages go. ``name`` is unique, safe as a file name and a metric label;
    the settings of ``transport`` are set (``file``, ``tls`` or ``udp``)."""

    name: str = setting(
        Text(
            label="name",
            pattern=CURSOR_NAME.pattern,
            reason="must be 1 to 32 of a-z, 0-9, '_' and '-', starting alnum",
        ),
        "Names its cursor (journal/cursors/<name>) and its metric label.",
        required=True,
    )
    transport: TransportKind = setting(_TRANSPORT, "How messages are sent.", required=True)
    file: FileSettings | None = setting(
        Section(FileSettings), "transport file: the file.", default=None
    )
    tls: TlsSettings | None = setting(
        Section(TlsSettings), "transport tls: the repository.", default=None
    )
    udp: UdpSettings | None = setting(
        Section(UdpSettings), "transport udp: the repository.", default=None
    )
    fhir: FhirSettings | None = setting(
        Section(FhirSettings), "transport fhir: the FHIR server (IHE BALP).", default=None
    )

    def finish(self, report: Report) -> DestinationSettings:
        _check_transport(report, self.transport, self.tls, self.udp, self.fhir)
        if self.transport is not TransportKind.FILE:
            return dataclasses.replace(self, file=None)
        return dataclasses.replace(self, file=self.file or FileSettings())


def _default_destinations() -> tuple[DestinationSettings, ...]:
    return (DestinationSettings(name="file", transport=TransportKind.FILE, file=FileSettings()),)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditSettings:
    """ATNA audit (docs/audit.md): a list of ``destinations``, or one destination written in
    the section itself (``transport``, ``file``, ``tls``, ``udp``; named after its transport),
    never both. Without the section, audit messages go to a local file.

    Everything the audit service needs: at least one destination, names unique.
    ``transport``, ``file``, ``tls`` and ``udp`` describe the first destination, the one the
    single-destination form configures (``file`` always has a value, as before).
    """

    destinations: tuple[DestinationSettings, ...] = setting(
        ListOf(
            Section(DestinationSettings),
            min_items=1,
            reason="must be a non-empty list of destinations",
            unique={
                "name": "destination {!r} is already defined",
                "file.path": "another destination writes the same file",
            },
        ),
        "Where audit messages go, each from its own cursor in the journal.",
        factory=_default_destinations,
        shown="one file destination",
    )
    transport: TransportKind = setting(
        _TRANSPORT, "Single-destination form: how messages are sent.", default=TransportKind.FILE
    )
    file: FileSettings = setting(
        Section(FileSettings), "Single-destination form: the file.", factory=FileSettings
    )
    tls: TlsSettings | None = setting(
        Section(TlsSettings), "Single-destination form: transport tls.", default=None
    )
    udp: UdpSettings | None = setting(
        Section(UdpSettings), "Single-destination form: transport udp.", default=None
    )
    journal: JournalSettings = setting(
        Section(JournalSettings), "The journal.", factory=JournalSettings
    )
    syslog: SyslogSettings = setting(
        Section(SyslogSettings), "Syslog header fields.", factory=SyslogSettings
    )
    retry: RetrySettings = setting(
        Section(RetrySettings), "Retries of a failed destination.", factory=RetrySettings
    )
    stop_timeout_s: float = setting(
        Number(), "Seconds the audit service has to send what is pending at stop.", default=5.0
    )

    def finish(self, report: Report) -> AuditSettings:
        """One form or the other; the first destination and the single-destination fields
        are the same thing."""
        if not report.given("destinations"):
            _check_transport(report, self.transport, self.tls, self.udp)
            single = DestinationSettings(
                name=self.transport.value,
                transport=self.transport,
                file=self.file,
                tls=self.tls,
                udp=self.udp,
            )
            return dataclasses.replace(self, destinations=(single,))
        if any(report.given(key) for key in _SHORTHAND_KEYS):
            report.problem(
                "destinations", "use either destinations or transport/file/tls/udp, not both"
            )
        first = self.destinations[0]
        return dataclasses.replace(
            self,
            transport=first.transport,
            file=first.file or FileSettings(),
            tls=first.tls,
            udp=first.udp,
        )


def parse_audit_settings(document: Mapping[str, Any], *, source: str) -> AuditSettings:
    """Read ``audit`` from a parsed document. Raises :class:`ConfigError` with every problem,
    each named by its field path (``audit.tls.ca_file``)."""
    return read(AuditSettings, document.get("audit"), "audit", source=source)
