"""ATNA audit: DICOM PS3.15 A.5 messages, journalled on disk, sent to an Audit Record
Repository over RFC 5424 syslog (RFC 5425 TLS, RFC 5426 UDP) or written to a local file.

Modules, one concept each::

    codes       coded values (PS3.16 CIDs 400 to 404, RFC 3881, IHE transactions)
    model       an audit message as frozen values (PS3.15 A.5.1 structure)
    messages    pure builders: Instances Transferred, Application Activity, Security Alert
    render      model → XML bytes
    syslog      RFC 5424 message and RFC 5425 octet-counting frame
    journal     the append-only on-disk journal with its committed offset and cap
    transports  TLS, UDP and file transports
    sender      the asyncio task that drains the journal, at least once
    metrics     mado_gateway_audit_* metrics
    settings    the ``audit`` configuration section
    service     AuditService: the exchange sink and the lifecycle the gateway wires in

``codes``, ``model``, ``messages``, ``render`` and ``syslog`` do no I/O and import neither
aiohttp nor asyncio (design.md §9 rule 1).

Errors::

    AuditError
     ├── JournalError        the journal cannot be opened, read or written (errno when an OS error)
     │    ├── JournalFull    the append would take the unsent backlog over the cap
     │    └── JournalCorrupt a journal file holds bytes that are not a whole, checksummed record
     └── TransportError      the repository cannot be reached or the connection broke (reason)

Configuration problems are :class:`routing.errors.ConfigError`, as for every section. The
gateway wires :class:`gateway.audit.service.AuditService`, configured by
:func:`gateway.audit.settings.parse_audit_settings`.
Nothing here raises into a request: the sink methods count and log instead.
"""

from __future__ import annotations

# Only the pure parts are imported here, so ``import gateway.audit.messages`` stays free of
# asyncio; the service lives in gateway.audit.service.
from gateway.audit.errors import (
    AuditError,
    JournalCorrupt,
    JournalError,
    JournalFull,
    TransportError,
)
from gateway.audit.messages import AlertKind

__all__ = [
    "AlertKind",
    "AuditError",
    "JournalCorrupt",
    "JournalError",
    "JournalFull",
    "TransportError",
]
