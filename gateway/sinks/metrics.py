"""Prometheus metrics, registered on an injected ``CollectorRegistry``.

Names carry the ``mado_gateway_`` prefix and base units; counters end in ``_total``. Label
values come only from bounded sets — route kinds, resource kinds, status codes, configured
upstream names, fixed reason words — never an OID, a UID or a URL (those are PHI-adjacent and
unbounded). Known label combinations are created at start so a dashboard sees zeros, not gaps.

:class:`Metrics` is also the metrics sink: everything about upstreams — requests by status
class, errors by reason, redirects by outcome, address refusals, bytes, time to first byte —
is derived from the sealed exchange's legs (:mod:`gateway.exchange`); the relay counts
nothing itself.

Several worker processes (``serve --workers N``) write their values to files in one folder
(prometheus-client's multiprocess mode, :func:`enable_multiprocess`) and the admin listener
adds them up (:func:`exposition`): counters and histograms are summed over every process that
ever ran since the start; each gauge says how (``multiprocess_mode``: requests in flight are
summed over the live workers, the last reload's success is the lowest of them). Build
information is a gauge (an ``Info`` has no multiprocess form).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.exchange import Exchange, Leg, Outcome, StreamEnd

__all__ = [
    "ABORT_CAUSES",
    "INBOUND_REFUSALS",
    "LOOKUP_RESULTS",
    "MANIFEST_CACHE_EVENTS",
    "REDIRECT_OUTCOMES",
    "UPSTREAM_ERROR_REASONS",
    "Metrics",
    "enable_multiprocess",
    "exposition",
]

_PREFIX = "mado_gateway"
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFB_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

LOOKUP_RESULTS = (
    "relay",
    "source",
    "retrieve-url",
    "unknown-community",
    "unknown-source",
    "retrieve-url-refused",
    "invalid",
)
UPSTREAM_ERROR_REASONS = (
    "connect",
    "tls",
    "closed",
    "protocol",
    "connect-timeout",
    "read-timeout",
    "status",
    "redirect",
    "truncated",  # in mid-body: the body ended or broke before it was complete
    "stalled",  # in mid-body: no data for read_idle_s
    "address",  # the address policy refused every address of the base URL's host
)
REDIRECT_OUTCOMES = (
    "followed",
    "scheme",
    "userinfo",
    "ip-spelling",
    "malformed",
    "traversal",
    "address",
    "origin",
    "hop-limit",
    "loop",
    "no-location",
)
INBOUND_REFUSALS = (
    "invalid-request",
    "uri-too-long",
    "headers-too-large",
    "request-body-not-allowed",
    "cors-origin-refused",
    "client-not-allowed",
    "rate-limited",
    "too-many-streams",
)
MANIFEST_CACHE_EVENTS = ("hit", "miss", "stored", "too-large")
"""The values of :class:`gateway.manifestcache.CacheEvent` (a test keeps them equal)."""

ABORT_CAUSES = ("client", "upstream", "shutdown")
"""Why a response was aborted after its first byte: the client left, the upstream's body
broke, or the drain after SIGTERM ran out of time (:mod:`gateway.edge.drain`)."""
_UPSTREAM_ENDS = frozenset({StreamEnd.TRUNCATED, StreamEnd.STALLED})  # the upstream's fault
ROUTE_KINDS = (
    "relay",
    "source",
    "retrieve-url",
    "manifest",
    "xca",  # the SOAP endpoint, before the request was read far enough to know the role
    "initiating",  # RAD-69 answered (gateway.protocols.xca.plan.Role)
    "responding",  # RAD-75 answered
    "none",
)


class Metrics:
    """Every metric the gateway exports; one instance per process, created at start."""

    def __init__(
        self, registry: CollectorRegistry, *, version: str, commit: str = "unknown"
    ) -> None:
        self.registry = registry
        self.requests = Counter(
            f"{_PREFIX}_requests",
            "Requests answered, by route kind, resource kind and HTTP status.",
            ("route", "resource", "status"),
            registry=registry,
        )
        self.request_duration = Histogram(
            f"{_PREFIX}_request_duration_seconds",
            "Time from request start to the last byte sent (or the abort).",
            ("route", "resource"),
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.time_to_first_byte = Histogram(
            f"{_PREFIX}_time_to_first_byte_seconds",
            "Time from request start to the first body byte relayed to the client.",
            ("route", "upstream"),
            buckets=_TTFB_BUCKETS,
            registry=registry,
        )
        self.relayed_bytes = Counter(
            f"{_PREFIX}_relayed_bytes",
            "Body bytes relayed from upstreams to clients.",
            ("route", "upstream"),
            registry=registry,
        )
        self.upstream_requests = Counter(
            f"{_PREFIX}_upstream_requests",
            "Requests sent to upstreams, by upstream and status class (or 'error').",
            ("upstream", "status_class"),
            registry=registry,
        )
        self.upstream_errors = Counter(
            f"{_PREFIX}_upstream_errors",
            "Upstream failures by reason; a failover attempt counts once per base URL tried.",
            ("upstream", "reason"),
            registry=registry,
        )
        self.stream_aborts = Counter(
            f"{_PREFIX}_stream_aborts",
            "Responses aborted after the first byte, by cause (client, upstream, shutdown).",
            ("route", "cause"),
            registry=registry,
        )
        self.in_flight = Gauge(
            f"{_PREFIX}_in_flight_requests",
            "Requests being served now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.lookups = Counter(
            f"{_PREFIX}_routing_lookups",
            "Routing decisions by result.",
            ("result",),
            registry=registry,
        )
        self.reloads = Counter(
            f"{_PREFIX}_registry_reloads",
            "Configuration reloads by result.",
            ("result",),
            registry=registry,
        )
        self.reload_ok = Gauge(
            f"{_PREFIX}_registry_last_reload_successful",
            "1 if the last configuration (re)load succeeded, 0 if the gateway kept an older one.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.redirects = Counter(
            f"{_PREFIX}_redirects",
            "Upstream redirects by outcome: followed, or the policy rule that refused them.",
            ("upstream", "outcome"),
            registry=registry,
        )
        self.address_refusals = Counter(
            f"{_PREFIX}_address_refusals",
            "Outbound connections refused by the address policy, by address class.",
            ("upstream", "address_class"),
            registry=registry,
        )
        self.inbound_refusals = Counter(
            f"{_PREFIX}_inbound_refusals",
            "Requests refused before routing (limits, CORS, client certificate, rate).",
            ("reason",),
            registry=registry,
        )
        self.security_events = Counter(
            f"{_PREFIX}_security_events",
            "Security events reported (security alerts), by kind.",
            ("kind",),
            registry=registry,
        )
        self.manifest_cache = Counter(
            f"{_PREFIX}_manifest_cache_events",
            "Manifest instance-list cache: lookups (hit, miss) and stores (stored, too-large).",
            ("event",),
            registry=registry,
        )
        self.build = Gauge(
            f"{_PREFIX}_build_info",
            "Always 1: the gateway's version and the commit it was built from.",
            ("version", "commit"),
            registry=registry,
            multiprocess_mode="livemax",
        )
        for reason in INBOUND_REFUSALS:
            self.inbound_refusals.labels(reason)
        self.build.labels(version, commit).set(1)
        for result in LOOKUP_RESULTS:
            self.lookups.labels(result)
        for event in MANIFEST_CACHE_EVENTS:
            self.manifest_cache.labels(event)
        for result in ("success", "failure"):
            self.reloads.labels(result)
        self.reload_ok.set(1)
        # The children a finished exchange touches, remembered per label values: labels()
        # hashes and checks its arguments on every call, several times per request, and
        # these label sets are bounded (design §7), so the cache is too.
        self._requests = _remembered(self.requests)
        self._duration = _remembered(self.request_duration)
        self._first_byte = _remembered(self.time_to_first_byte)
        self._upstream_requests = _remembered(self.upstream_requests)
        self._relayed = _remembered(self.relayed_bytes)

    def known_upstreams(self, names: Iterable[str]) -> None:
        """Create the per-upstream series for a (re)loaded configuration."""
        for name in names:
            for reason in UPSTREAM_ERROR_REASONS:
                self.upstream_errors.labels(name, reason)
            for outcome in REDIRECT_OUTCOMES:
                self.redirects.labels(name, outcome)

    def observe(self, exchange: Exchange) -> None:
        """The metrics sink: count one finished exchange and each of its legs."""
        route = exchange.route_kind
        self._requests(route, exchange.resource, str(exchange.status)).inc()
        if exchange.duration_s is not None:
            self._duration(route, exchange.resource).observe(exchange.duration_s)
        if not exchange.legs:
            return
        for leg in exchange.legs:
            self._leg(route, leg)
        if exchange.first_byte_s is not None:
            first = next((leg for leg in exchange.legs if leg.answered), exchange.legs[-1])
            self._first_byte(route, first.upstream).observe(exchange.first_byte_s)
        # Body bytes a handler counted on the exchange without a leg's count (a re-framing
        # handler) go to the leg that was relaying last.
        unclaimed = exchange.bytes_sent - sum(leg.bytes for leg in exchange.legs)
        if unclaimed > 0:
            self.relayed_bytes.labels(route, exchange.legs[-1].upstream).inc(unclaimed)
        if exchange.outcome is Outcome.ABORTED:
            cause = exchange.error or "unknown"
            self.stream_aborts.labels(route, cause if cause in ABORT_CAUSES else "upstream").inc()

    def _leg(self, route: str, leg: Leg) -> None:
        upstream = leg.upstream
        for attempt in leg.attempts:
            if attempt.failure is not None:  # no answer to relay: an error, with its reason
                self.upstream_requests.labels(upstream, "error").inc()
                self.upstream_errors.labels(upstream, attempt.failure.value).inc()
            else:
                self._upstream_requests(upstream, _status_class(attempt.status)).inc()
        end = leg.end
        if end is not None and end in _UPSTREAM_ENDS:
            self.upstream_errors.labels(upstream, end.value).inc()
        for hop in leg.hops:
            self.redirects.labels(upstream, hop.refused or "followed").inc()
        for refusal in leg.refusals:
            if refusal.address_class is not None:
                self.address_refusals.labels(upstream, refusal.address_class).inc()
        if leg.bytes:
            self._relayed(route, upstream).inc(leg.bytes)


_M = TypeVar("_M", Counter, Histogram)


def _remembered(metric: _M) -> Callable[..., _M]:
    """``metric.labels``, answering each combination of label values from memory."""
    return functools.lru_cache(maxsize=1024)(metric.labels)


def _status_class(status: int | None) -> str:
    """The bounded label of an upstream status: 1xx…5xx, or "other"."""
    if status is None or not 100 <= status < 600:
        return "other"
    return f"{status // 100}xx"


def enable_multiprocess(folder: Path) -> None:
    """Make every metric created from now on in this process write to ``folder`` (one file
    per process and kind), where :func:`exposition` adds them up. Called in a worker process
    before its metrics exist."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def exposition(registry: CollectorRegistry, folder: Path | None) -> tuple[bytes, str]:
    """The text exposition of ``registry``, or of every process's files in ``folder``."""
    if folder is None:
        return generate_latest(registry), CONTENT_TYPE_LATEST
    combined = CollectorRegistry()
    MultiProcessCollector(combined, path=str(folder))  # type: ignore[no-untyped-call]
    return generate_latest(combined), CONTENT_TYPE_LATEST
