"""Security events: refusals and failures an operator (and the audit trail) must hear about.

The gateway reports each through :class:`SecurityEvents`, an interface with one method. The
default, :class:`LogSecurityEvents`, writes one JSON log line per event; the audit package
provides an implementation that sends a DICOM PS3.15 A.5.3.11 Security Alert (EventID
110113) to the Audit Record Repository. Reporting never blocks and never raises into the
request: an implementation must enqueue and return.

The relay raises none itself: it records each refusal on its exchange's leg
(:class:`~gateway.exchange.Refusal`) and :class:`SecurityAlerts`, a sink, reports them —
when the leg's answer is about to reach the client, or when the exchange is sealed for a
leg never answered (before the client sees the error).

Kinds (bounded words): ``redirect-refused``, ``address-refused``, ``retrieve-url-refused``,
``tls-failure``, ``client-refused``. ``tls-failure`` is both directions: an upstream whose
TLS failed (the target is its URL) and an inbound handshake that failed (the target is the
peer's ``address:port``, and the performer its address; :mod:`gateway.edge.tlsaccept`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Counter

from gateway.exchange import Exchange, Leg, Refusal

__all__ = [
    "KINDS",
    "CountedSecurityEvents",
    "LogSecurityEvents",
    "SecurityAlerts",
    "SecurityEvents",
]

KINDS = (
    "redirect-refused",
    "address-refused",
    "retrieve-url-refused",
    "tls-failure",
    "client-refused",
)

log = logging.getLogger("mado_gateway.security")


class SecurityEvents(Protocol):
    """Receives security events. Must return quickly and never raise."""

    def security_alert(
        self, kind: str, target: str, detail: str, *, performer: str | None = None
    ) -> None:
        """``kind``: one of :data:`KINDS`; ``target``: the URL, host or subject concerned;
        ``detail``: our own sentence naming the rule (never an upstream's message);
        ``performer``: the address of whoever caused it, when known."""


class LogSecurityEvents:
    """The default sink: one ``security alert`` JSON log line at WARNING level."""

    def security_alert(
        self, kind: str, target: str, detail: str, *, performer: str | None = None
    ) -> None:
        extra = {"kind": kind, "target": target, "detail": detail}
        if performer is not None:
            extra["performer"] = performer
        log.warning("security alert", extra=extra)


class CountedSecurityEvents:
    """Counts each event in ``mado_gateway_security_events_total{kind}``, then hands it on.

    Whatever ``inner`` raises is logged and swallowed: reporting must never break a request.
    """

    def __init__(self, counter: Counter, inner: SecurityEvents | None = None) -> None:
        self._counter = counter
        self.inner: SecurityEvents = inner if inner is not None else LogSecurityEvents()
        for kind in KINDS:
            counter.labels(kind)

    def security_alert(
        self, kind: str, target: str, detail: str, *, performer: str | None = None
    ) -> None:
        self._counter.labels(kind).inc()
        try:
            self.inner.security_alert(kind, target, detail, performer=performer)
        except Exception:
            log.exception("security event sink failed", extra={"kind": kind})


class SecurityAlerts:
    """The security sink: one alert per :class:`~gateway.exchange.Refusal` a leg recorded.

    A leg's refusals all happen before its answer (they end attempts), so they are
    reported at :meth:`answered`; :meth:`observe` reports those of the legs never answered
    and those of the request itself (a refused retrieveurl or client certificate).
    Each refusal is reported once.
    """

    __slots__ = ("_events",)

    def __init__(self, events: SecurityEvents) -> None:
        self._events = events

    def answered(self, exchange: Exchange, leg: Leg) -> None:
        self._report(leg.refusals)

    def observe(self, exchange: Exchange) -> None:
        for leg in exchange.legs:
            if not leg.answered:
                self._report(leg.refusals)
        self._report(exchange.refusals)

    def _report(self, refusals: Iterable[Refusal]) -> None:
        for refusal in refusals:
            self._events.security_alert(refusal.kind.value, refusal.target, refusal.detail)
