"""ATNA audit: DICOM PS3.15 A.5 messages, journalled on disk as neutral records, rendered and
sent by each destination from its own cursor: an Audit Record Repository over RFC 5424 syslog
(RFC 5425 TLS, RFC 5426 UDP) or a local file.

Modules, one concept each::

    codes        coded values (PS3.16 CIDs 400 to 404, RFC 3881, IHE transactions, BALP)
    model        an audit message as frozen values (PS3.15 A.5.1 structure)
    messages     pure builders: Instances Transferred of the RAD-160 leg, Application
                 Activity, Security Alert
    transfers    pure builders: Begin Transferring, Instances Accessed of DICOMweb legs
    retrieves    pure builders for SOAP retrieves (RAD-69 / RAD-75: Instances Transferred
                 and Accessed), and the one dispatch from an exchange to its messages
    participants the active participants of those messages (one Source, one Destination)
    objects      their participant objects: patient, study, the request
    record       the journal's neutral, versioned record of one event and its codec
    render       model → XML bytes
    syslog       RFC 5424 message and RFC 5425 octet-counting frame
    segments     the journal's segment files and a reader usable from any thread
    recovery     reading a journal directory back at open: whole records, gaps, cursors
    cursors      one cursor file per destination (and the legacy ``committed`` offset)
    journal      the append-only on-disk journal: appends, cursors, cap, sync
    groupcommit  the thread that flushes the journal once per batch
    transports   TLS, UDP and file transports
    destinations a destination's transport and renderer, built from its settings
    sender       the asyncio task that drains the journal to one destination, at least once
    sendloop     the senders' own event loop, in a thread: nothing is sent from the request loop
    metrics      mado_gateway_audit_* metrics
    settings     the ``audit`` configuration section
    service      AuditService: the exchange sink and the lifecycle the gateway wires in

``codes``, ``model``, ``messages``, ``transfers``, ``retrieves``, ``participants``,
``objects``, ``record``, ``render`` and ``syslog`` do no I/O and import neither aiohttp nor
asyncio (design.md §9 rule 1).

Errors::

    AuditError
     ├── JournalError        the journal cannot be opened, read or written (errno when an OS error)
     │    ├── JournalFull    the append would take the slowest destination's backlog over the cap
     │    └── JournalCorrupt a journal file holds bytes that are not a whole, checksummed record
     │         └── RecordError  a checksummed record this build cannot decode (``version``: a
     │                          newer release wrote it; the journal then refuses to open)
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
    RecordError,
    TransportError,
)
from gateway.audit.messages import AlertKind

__all__ = [
    "AlertKind",
    "AuditError",
    "JournalCorrupt",
    "JournalError",
    "JournalFull",
    "RecordError",
    "TransportError",
]
