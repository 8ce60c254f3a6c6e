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
key are required. Relative paths are relative to the working directory.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.cursors import CURSOR_NAME
from routing.errors import ConfigError, ConfigProblem
from routing.fields import Fields

__all__ = [
    "AuditSettings",
    "DestinationSettings",
    "FileSettings",
    "JournalSettings",
    "RetrySettings",
    "SyslogSettings",
    "TlsSettings",
    "TransportKind",
    "UdpSettings",
    "parse_audit_settings",
]


_TLS_PORT = 6514  # RFC 5425 §4.1
_UDP_PORT = 514  # RFC 5426 §3.3
_CONNECT_TIMEOUT_S = 5.0
_SETTLE_S = 0.5
_STOP_TIMEOUT_S = 5.0
_SHORTHAND_KEYS = ("transport", "file", "tls", "udp")


class TransportKind(enum.StrEnum):
    FILE = "file"
    TLS = "tls"
    UDP = "udp"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSettings:
    path: str = "audit/audit.log"


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    """RFC 5425 client settings. ``settle_s``: see :mod:`gateway.audit.sender`."""

    host: str
    port: int = _TLS_PORT
    ca_file: str
    cert_file: str
    key_file: str
    server_name: str | None = None
    connect_timeout_s: float = _CONNECT_TIMEOUT_S
    settle_s: float = _SETTLE_S


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpSettings:
    host: str
    port: int = _UDP_PORT


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalSettings:
    """``max_bytes`` caps the unsent backlog; ``fsync_interval_s`` is the group-commit period."""

    directory: str = "audit/journal"
    max_bytes: int = 256 * 1024 * 1024
    segment_bytes: int = 4 * 1024 * 1024
    fsync_interval_s: float = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class SyslogSettings:
    """RFC 5424 header fields; ``hostname`` None means the machine's host name."""

    app_name: str = "mado-gateway"
    hostname: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySettings:
    initial_s: float = 0.5
    max_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DestinationSettings:
    """One place audit messages go. ``name`` is unique, safe as a file name and a metric label;
    the settings of ``transport`` are set (``file``, ``tls`` or ``udp``)."""

    name: str
    transport: TransportKind
    file: FileSettings | None = None
    tls: TlsSettings | None = None
    udp: UdpSettings | None = None


def _default_destinations() -> tuple[DestinationSettings, ...]:
    return (DestinationSettings(name="file", transport=TransportKind.FILE, file=FileSettings()),)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditSettings:
    """Everything the audit service needs: at least one destination, names unique.

    ``transport``, ``file``, ``tls`` and ``udp`` describe the first destination, the one the
    single-destination form configures (``file`` always has a value, as before).
    """

    destinations: tuple[DestinationSettings, ...] = field(default_factory=_default_destinations)
    journal: JournalSettings = field(default_factory=JournalSettings)
    syslog: SyslogSettings = field(default_factory=SyslogSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    stop_timeout_s: float = _STOP_TIMEOUT_S

    @property
    def transport(self) -> TransportKind:
        return self.destinations[0].transport

    @property
    def file(self) -> FileSettings:
        return self.destinations[0].file or FileSettings()

    @property
    def tls(self) -> TlsSettings | None:
        return self.destinations[0].tls

    @property
    def udp(self) -> UdpSettings | None:
        return self.destinations[0].udp


def parse_audit_settings(document: Mapping[str, Any], *, source: str) -> AuditSettings:
    """Read ``audit`` from a parsed document. Raises :class:`ConfigError` with every problem,
    each named by its field path (``audit.tls.ca_file``)."""
    problems: list[ConfigProblem] = []
    root = Fields(document.get("audit"), "audit", problems)
    if root.has("destinations"):
        destinations = _destinations(root)
    else:
        destinations = (_destination(root, name=None),)
    journal = _journal(root.section("journal"))
    syslog = _syslog(root.section("syslog"))
    retry = _retry(root.section("retry"))
    stop_timeout_s = root.number("stop_timeout_s", _STOP_TIMEOUT_S)
    root.finish()
    if problems:
        raise ConfigError(problems, source)
    return AuditSettings(
        destinations=destinations,
        journal=journal,
        syslog=syslog,
        retry=retry,
        stop_timeout_s=stop_timeout_s,
    )


def _destinations(root: Fields) -> tuple[DestinationSettings, ...]:
    if any(root.has(key) for key in _SHORTHAND_KEYS):
        root.problem("destinations", "use either destinations or transport/file/tls/udp, not both")
        for key in _SHORTHAND_KEYS:
            root.raw(key)  # reported once, above, rather than as unknown fields
    items = root.raw("destinations")
    if not isinstance(items, list) or not items:
        root.problem("destinations", "must be a non-empty list of destinations")
        return ()
    out: list[DestinationSettings] = []
    names: set[str] = set()
    files: set[str] = set()
    for index, item in enumerate(items):
        fields = Fields(item, f"{root.child_path('destinations')}[{index}]", root.problems)
        if not fields.valid:
            continue
        name = fields.text("name", required=True)
        if name is not None and not CURSOR_NAME.fullmatch(name):
            fields.problem("name", "must be 1 to 32 of a-z, 0-9, '_' and '-', starting alnum")
        elif name is not None and name in names:
            fields.problem("name", f"destination {name!r} is already defined")
        destination = _destination(fields, name=name or f"#{index}")
        fields.finish()
        if name is not None:
            names.add(name)
        if destination.file is not None:
            if destination.file.path in files:
                fields.problem("file.path", "another destination writes the same file")
            files.add(destination.file.path)
        out.append(destination)
    return tuple(out)


def _destination(fields: Fields, *, name: str | None) -> DestinationSettings:
    """One destination from ``fields``: a list entry, or the section itself (shorthand,
    ``name`` None: named after its transport)."""
    shorthand = name is None
    default = TransportKind.FILE.value if shorthand else None
    kind_text = fields.text("transport", default, required=not shorthand)
    kind: TransportKind | None = None
    if kind_text is not None:
        try:
            kind = TransportKind(kind_text.lower())
        except ValueError:
            fields.problem("transport", "must be file, tls or udp")
    file_settings: FileSettings | None = _file(fields.section("file"))
    tls = _tls(fields.section("tls"), wanted=kind is TransportKind.TLS or fields.has("tls"))
    udp = _udp(fields.section("udp"), wanted=kind is TransportKind.UDP or fields.has("udp"))
    if not shorthand and kind is not TransportKind.FILE:
        file_settings = None  # the shorthand keeps one, as before: ``file`` always has a value
    kind = kind or TransportKind.FILE  # when invalid, a problem is recorded already
    return DestinationSettings(
        name=name or kind.value,
        transport=kind,
        file=file_settings,
        tls=tls,
        udp=udp,
    )


def _file(fields: Fields) -> FileSettings:
    default = FileSettings().path
    path = fields.text("path", default) or default
    fields.finish()
    return FileSettings(path=path)


def _port(fields: Fields, default: int) -> int:
    port = fields.integer("port", default)
    if port > 65535:
        fields.problem("port", "must be at most 65535")
    return port


def _tls(fields: Fields, *, wanted: bool) -> TlsSettings | None:
    if not wanted:
        return None
    host = fields.text("host", required=True)
    port = _port(fields, _TLS_PORT)
    ca_file = fields.text("ca_file", required=True)
    cert_file = fields.text("cert_file", required=True)
    key_file = fields.text("key_file", required=True)
    server_name = fields.text("server_name")
    connect_timeout_s = fields.number("connect_timeout_s", _CONNECT_TIMEOUT_S)
    settle_s = fields.number("settle_s", _SETTLE_S, positive=False)
    if settle_s < 0:
        fields.problem("settle_s", "must not be negative")
    fields.finish()
    if host is None or ca_file is None or cert_file is None or key_file is None:
        return None
    return TlsSettings(
        host=host,
        port=port,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        server_name=server_name,
        connect_timeout_s=connect_timeout_s,
        settle_s=settle_s,
    )


def _udp(fields: Fields, *, wanted: bool) -> UdpSettings | None:
    if not wanted:
        return None
    host = fields.text("host", required=True)
    port = _port(fields, _UDP_PORT)
    fields.finish()
    return None if host is None else UdpSettings(host=host, port=port)


def _journal(fields: Fields) -> JournalSettings:
    default = JournalSettings()
    directory = fields.text("directory", default.directory) or default.directory
    max_bytes = fields.integer("max_bytes", default.max_bytes, minimum=64 * 1024)
    segment_bytes = fields.integer("segment_bytes", default.segment_bytes, minimum=64 * 1024)
    fsync_interval_s = fields.number("fsync_interval_s", default.fsync_interval_s)
    fields.finish()
    return JournalSettings(
        directory=directory,
        max_bytes=max_bytes,
        segment_bytes=segment_bytes,
        fsync_interval_s=fsync_interval_s,
    )


def _syslog(fields: Fields) -> SyslogSettings:
    default = SyslogSettings().app_name
    app_name = fields.text("app_name", default) or default
    if len(app_name) > 48 or not app_name.isascii() or " " in app_name:
        fields.problem("app_name", "must be at most 48 printable ASCII characters without spaces")
    hostname = fields.text("hostname")
    if hostname is not None and (len(hostname) > 255 or not hostname.isascii() or " " in hostname):
        fields.problem("hostname", "must be at most 255 printable ASCII characters without spaces")
    fields.finish()
    return SyslogSettings(app_name=app_name, hostname=hostname)


def _retry(fields: Fields) -> RetrySettings:
    default = RetrySettings()
    initial_s = fields.number("initial_s", default.initial_s)
    max_s = fields.number("max_s", default.max_s)
    if max_s < initial_s:
        fields.problem("max_s", "must not be less than initial_s")
    fields.finish()
    return RetrySettings(initial_s=initial_s, max_s=max_s)
