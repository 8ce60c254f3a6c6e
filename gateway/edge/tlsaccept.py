"""Inbound TLS handshakes done where their failures can be seen (checklist item 53).

Checklist item 53: "TLS handshake/node authentication failures emit Security Alert (110113)
with EventTypeCode 110126." When a listening socket is given an SSL context, asyncio shakes
hands inside its own ``SSLProtocol`` and drops a failed handshake silently: an ``ssl.SSLError``
is an ``OSError``, which asyncio logs only in debug mode, and aiohttp never hears of the
connection. So :class:`TlsSite` listens in plain TCP and upgrades each accepted connection
itself with ``loop.start_tls(server_side=True)`` — a public asyncio API that raises the
handshake's exception to its caller. Chosen over the other hooks because each of them is
private or blind: the loop's exception handler is not called for ``OSError``; a custom
``SSLObject`` class sees the failure but not the peer's address; ``SSLProtocol`` callbacks
are asyncio internals.

After a successful handshake the connection is handed to aiohttp's request handler exactly
as asyncio would have (``connection_made`` with the TLS transport, whose ``peercert``,
``sslcontext`` and ``peername`` are the same). Until then the application side of the TLS
transport is a placeholder that keeps whatever application data arrived with the client's
last handshake flight, so nothing is lost or delivered early. One task per connection, for
the handshake only; nothing is added per chunk.

Every failure is counted in ``mado_gateway_inbound_tls_failures_total{reason}``
(:data:`REASONS`). TLS-level failures — no client certificate, a certificate that does not
verify, a peer's TLS alert, a protocol version refused, bytes that are not TLS — are reported
by :class:`HandshakeFailures` as a ``tls-failure`` security event (the audit trail makes it
a Security Alert 110113 with EventTypeCode 110126 Node Authentication, and it is a WARNING
log line), naming the peer's address as performer. At most one alert per peer address per
``handshake_alert_interval_s``, and at most ``handshake_alerts_per_interval`` in all over
that time, so a flood — one address or many — cannot flood the journal; the ones held back
are counted in ``mado_gateway_inbound_tls_alerts_suppressed_total``. A connection closed or
timed out before completing a handshake (a load balancer's TCP probe, a port scan) is counted
as ``closed`` or ``timeout`` and is not an alert.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from gateway.edge.hardening import TokenBuckets
from gateway.relay.tls import tls_failure
from gateway.settings import RateLimit, ServerTls
from gateway.sinks.security import SecurityEvents

__all__ = ["REASONS", "HandshakeFailures", "TlsSite", "failure_reason"]

log = logging.getLogger("mado_gateway.tls")

REASONS = (
    "no-client-certificate",
    "certificate-verify-failed",
    "peer-alert",
    "protocol-version",
    "not-tls",
    "handshake-failed",
    "closed",
    "timeout",
)
_NOT_ALERTED = frozenset({"closed", "timeout"})
_NOT_TLS = frozenset(
    {
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "RECORD_LENGTH_MISMATCH",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LAYER_FAILURE",
    }
)
_VERSION = frozenset(
    {
        "UNSUPPORTED_PROTOCOL",
        "VERSION_TOO_LOW",
        "NO_PROTOCOLS_AVAILABLE",
        "TLSV1_ALERT_PROTOCOL_VERSION",
    }
)


def failure_reason(exc: BaseException) -> str:
    """The bounded word (one of :data:`REASONS`) for why an inbound handshake failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "certificate-verify-failed"
    if isinstance(exc, ssl.SSLEOFError):
        return "closed"  # the peer went away mid-handshake, without a TLS alert
    if isinstance(exc, ssl.SSLError):
        reason = str(getattr(exc, "reason", None) or "").upper()
        if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return "no-client-certificate"
        if reason in _VERSION:
            return "protocol-version"
        if reason in _NOT_TLS:
            return "not-tls"
        if reason.startswith(("TLSV1_ALERT_", "SSLV3_ALERT_", "TLSV13_ALERT_")):
            return "peer-alert"
        return "handshake-failed"
    if isinstance(exc, TimeoutError | ConnectionAbortedError):
        return "timeout"  # asyncio aborts a handshake that outlives its timeout this way
    return "closed"


class HandshakeFailures:
    """Counts inbound handshake failures and reports the TLS-level ones, rate-limited (see the
    module docstring). ``failed`` never raises and never blocks."""

    def __init__(
        self,
        events: SecurityEvents,
        registry: CollectorRegistry,
        tls: ServerTls,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._events = events
        interval = tls.handshake_alert_interval_s
        # A bucket of one alert per address, refilled once per interval; and one shared bucket.
        self._per_peer = TokenBuckets(
            RateLimit(requests_per_s=1 / interval, burst=1, max_clients=10000), clock=clock
        )
        most = tls.handshake_alerts_per_interval
        self._overall = TokenBuckets(
            RateLimit(requests_per_s=most / interval, burst=most, max_clients=1), clock=clock
        )
        self.failures = Counter(
            "mado_gateway_inbound_tls_failures_total",
            "Inbound TLS handshakes that failed, by reason.",
            ["reason"],
            registry=registry,
        )
        self.suppressed = Counter(
            "mado_gateway_inbound_tls_alerts_suppressed_total",
            "Inbound TLS failures not alerted: that peer, or all peers, had had their alerts.",
            registry=registry,
        )
        for reason in REASONS:
            self.failures.labels(reason)

    def failed(self, peer: object, exc: BaseException) -> None:
        """One inbound handshake from ``peer`` (a socket address) failed with ``exc``."""
        try:
            self._failed(peer, exc)
        except Exception:
            log.exception("inbound TLS failure could not be reported")

    def _failed(self, peer: object, exc: BaseException) -> None:
        reason = failure_reason(exc)
        self.failures.labels(reason).inc()
        host, port = _address(peer)
        if reason in _NOT_ALERTED:
            log.debug("inbound connection closed before TLS", extra={"peer": host, "why": reason})
            return
        if self._per_peer.take(host) > 0 or self._overall.take("") > 0:
            self.suppressed.inc()
            return
        what = tls_failure(exc) or reason
        why = reason if what == reason else f"{reason}: {what}"
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._events.security_alert(
            "tls-failure",
            target,
            f"inbound TLS handshake from {host} failed ({why})",
            performer=host,
        )


def _address(peer: object) -> tuple[str, int]:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), int(peer[1])
    return "unknown", 0


class TlsSite(web.BaseSite):
    """An aiohttp site serving HTTPS on ``host:port`` whose handshakes go through
    :class:`HandshakeFailures` (see the module docstring)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext,
        failures: HandshakeFailures,
        handshake_timeout_s: float = 60.0,
        backlog: int = 128,
        reuse_port: bool = False,
    ) -> None:
        """``reuse_port``: SO_REUSEPORT, so that several worker processes share the port."""
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._tls = ssl_context
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self._failures = failures
        self._timeout = handshake_timeout_s
        self._handshakes: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._accepted,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )

    def use_context(self, ssl_context: ssl.SSLContext) -> None:
        """Shake hands with ``ssl_context`` from the next connection on (a renewed
        certificate, SIGHUP); connections already open keep theirs."""
        self._tls = ssl_context

    async def stop(self) -> None:
        for task in list(self._handshakes):
            task.cancel()  # start_tls closes the connection on its way out
        await super().stop()

    def _accepted(self) -> asyncio.Protocol:
        return _Accepted(self._handshake)

    def _handshake(self, transport: asyncio.Transport) -> None:
        task = asyncio.get_running_loop().create_task(self._upgrade(transport))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        held = _Held()
        try:
            tls = await asyncio.get_running_loop().start_tls(
                transport,
                held,
                self._tls,
                server_side=True,
                ssl_handshake_timeout=self._timeout,
            )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            self._failures.failed(peer, exc)
            return
        if tls is None:  # closed while shaking hands, without an exception
            self._failures.failed(peer, ConnectionResetError())
            return
        if held.lost:
            return  # shook hands and left: nothing to serve
        server = self._runner.server
        assert server is not None  # the runner is set up before any site starts
        handler = server()
        tls.set_protocol(handler)
        handler.connection_made(tls)
        for data in held.data:
            handler.data_received(data)
        if held.eof:
            handler.eof_received()


class _Accepted(asyncio.Protocol):
    """A freshly accepted TCP connection: reading paused, the handshake started."""

    def __init__(self, start: Callable[[asyncio.Transport], None]) -> None:
        self._start = start

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # the ClientHello is for start_tls's protocol, not this one
        self._start(transport)


class _Held(asyncio.Protocol):
    """The application side of a TLS connection whose handshake is not yet known to have
    succeeded: keeps what arrives for the request handler."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.eof = False
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.data.append(data)

    def eof_received(self) -> None:
        self.eof = True

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
