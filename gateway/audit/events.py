"""The audit trail as the gateway's :class:`~gateway.sinks.security.SecurityEvents` sink.

Every security event the gateway reports becomes a Security Alert (110113, PS3.15 A.5.3.11)
in the audit journal, and keeps its JSON log line. The gateway's event kinds map to the alert
kinds whose codes :mod:`gateway.audit.messages` fixes:

====================  ===========================  ======================================
gateway kind          alert kind                   EventTypeCode
====================  ===========================  ======================================
retrieve-url-refused  refused-url                  110132 Use of Restricted Function
address-refused       refused-url                  110132 Use of Restricted Function
redirect-refused      refused-redirect             110132 Use of Restricted Function
tls-failure           tls-failure                  110126 Node Authentication
client-refused        tls-failure                  110126 Node Authentication
====================  ===========================  ======================================
"""

from __future__ import annotations

from gateway.audit.messages import AlertKind
from gateway.audit.service import AuditService
from gateway.sinks.logs import REQUEST_ID
from gateway.sinks.security import LogSecurityEvents

__all__ = ["AuditSecurityEvents"]

_KINDS = {
    "retrieve-url-refused": AlertKind.REFUSED_URL,
    "address-refused": AlertKind.REFUSED_URL,
    "redirect-refused": AlertKind.REFUSED_REDIRECT,
    "tls-failure": AlertKind.TLS_FAILURE,
    "client-refused": AlertKind.TLS_FAILURE,
}


class AuditSecurityEvents:
    """Log the event, then journal it as a Security Alert. Never raises (both never do).

    An event raised while a request is served names that request (its request id, as the
    log line does)."""

    def __init__(self, audit: AuditService) -> None:
        self._audit = audit
        self._log = LogSecurityEvents()

    def security_alert(
        self, kind: str, target: str, detail: str, *, performer: str | None = None
    ) -> None:
        self._log.security_alert(kind, target, detail, performer=performer)
        alert = _KINDS.get(kind, AlertKind.REFUSED_URL)
        self._audit.security_alert(
            alert, target, detail, performer=performer, request_id=REQUEST_ID.get()
        )
