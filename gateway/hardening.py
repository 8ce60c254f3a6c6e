"""Inbound hardening: size limits, CORS, client certificates, per-client rate and stream caps.

One middleware (:func:`hardening_middleware`), inside the exchange middleware so that every
refusal is an exchange with a problem+json answer and a stable ``type``:

=====================================  ===========  ========================================
check, in order                        status       type (``urn:mado-gateway:problem:…``)
=====================================  ===========  ========================================
URL longer than ``max_url_bytes``      414          ``uri-too-long``
encoded CR, LF, NUL… in the query      400          ``invalid-request``
header bytes or count over the limit   431          ``headers-too-large``
a body (retrieve requests take none)   413          ``request-body-not-allowed``
CORS preflight, origin not allowed     403          ``cors-origin-refused``
client certificate subject not listed  403          ``client-not-allowed``
token bucket of the client empty       429          ``rate-limited`` (``Retry-After``)
client already at ``max_streams``      429          ``too-many-streams`` (``Retry-After``)
=====================================  ===========  ========================================

The rate and stream checks and the subject check apply to the XC-WADO endpoint, not to
``/livez``, ``/readyz`` or ``/metrics``. A client is its verified certificate subject when
it presented one, else its address. Requests beyond aiohttp's own parser limits (set to
twice ours by :func:`parser_limits`) never reach any middleware: aiohttp answers those with
a bare 400 and closes the connection.

CORS (MADO Rev 1.1 §X.5): a preflight from an allowed origin is answered 204, allowing GET
and the headers a viewer sends (``Authorization`` included); every answer to an allowed
origin carries ``Access-Control-Allow-Origin`` and exposes the headers a viewer reads
(:func:`cors_on_prepare`).
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import (
    BodyNotAllowed,
    ClientNotAllowed,
    ControlInQuery,
    CorsRefused,
    HeadersTooLarge,
    InboundRefused,
    RateLimited,
    TooManyStreams,
    UriTooLong,
)
from gateway.keys import EXCHANGE
from gateway.metrics import Metrics
from gateway.middleware import problem_response
from gateway.security import SecurityEvents
from gateway.settings import CorsPolicy, InboundLimits, RateLimit, ServerSettings
from gateway.tls import peer_subject, subject_allowed
from routing.errors import RetrieveUrlRefused
from routing.model import origin_of

__all__ = [
    "CORS_ALLOWED_HEADERS",
    "CORS_EXPOSED_HEADERS",
    "MANIFEST_PATH",
    "ClientLimiter",
    "TokenBuckets",
    "cors_on_prepare",
    "hardening_middleware",
    "parser_limits",
]

MANIFEST_PATH = "/mado/retrieve"  # the one route that takes a body (a manifest)

CORS_ALLOWED_HEADERS = (
    "Authorization",
    "Accept",
    "Accept-Language",
    "Range",
    "If-Range",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Cache-Control",
    "X-Request-ID",
)
CORS_EXPOSED_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Content-Range",
    "Content-Location",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
    "Warning",
    "Retry-After",
    "X-Request-ID",
)


_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9a-fA-F]|7[fF])")


def parser_limits(limits: InboundLimits) -> dict[str, int]:
    """aiohttp's hard parser limits: twice ours, so ours answer with problem+json first."""
    return {
        "max_line_size": 2 * limits.max_url_bytes + 64,
        "max_field_size": 2 * limits.max_header_bytes,
        "max_headers": max(128, 2 * limits.max_headers),
    }


class TokenBuckets:
    """One token bucket per key, at most ``max_keys`` of them (least recently used dropped)."""

    def __init__(self, policy: RateLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = policy.requests_per_s
        self._burst = float(policy.burst)
        self._max_keys = policy.max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Take one token: 0.0 when admitted, else the seconds until one is available."""
        now = self._clock()
        tokens, stamp = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self._rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait


@dataclass
class ClientLimiter:
    """Request rate and concurrent streams per client."""

    policy: RateLimit
    buckets: TokenBuckets
    streams: dict[str, int]

    @classmethod
    def create(cls, policy: RateLimit) -> ClientLimiter:
        return cls(policy=policy, buckets=TokenBuckets(policy), streams={})

    def admit(self, client: str) -> None:
        """Raises :class:`RateLimited` with the whole seconds to wait."""
        wait = self.buckets.take(client)
        if wait > 0:
            raise RateLimited(max(1, math.ceil(wait)))

    @contextmanager
    def stream(self, client: str) -> Iterator[None]:
        """Hold one of the client's stream slots. Raises :class:`TooManyStreams`."""
        running = self.streams.get(client, 0)
        if running >= self.policy.max_streams:
            raise TooManyStreams(1)
        self.streams[client] = running + 1
        try:
            yield
        finally:
            left = self.streams[client] - 1
            if left:
                self.streams[client] = left
            else:
                del self.streams[client]


def hardening_middleware(
    settings: ServerSettings, metrics: Metrics, events: SecurityEvents
) -> Middleware:
    """The middleware described in the module docstring, for one application."""
    limiter = ClientLimiter.create(settings.rate_limit)
    endpoint = settings.base_path + "/"
    limited = (endpoint, MANIFEST_PATH)

    @web.middleware
    async def hardening(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            _check_sizes(request, settings.limits)
            if _is_preflight(request):
                return _preflight(request, settings.cors)
            if not request.path.startswith(limited):
                return await handler(request)
            client = _client(request, settings, events)
            limiter.admit(client)
            with limiter.stream(client):
                try:
                    return await handler(request)
                except RetrieveUrlRefused as exc:
                    events.security_alert("retrieve-url-refused", exc.target, exc.rule)
                    raise
        except InboundRefused as exc:
            metrics.inbound_refusals.labels(exc.slug).inc()
            response = problem_response(exc, request[EXCHANGE])
            if isinstance(exc, BodyNotAllowed | UriTooLong | HeadersTooLarge):
                response.force_close()  # an unread body or an oversized stream: start afresh
            return response

    return hardening


def _check_sizes(request: web.Request, limits: InboundLimits) -> None:
    if len(request.raw_path) > limits.max_url_bytes:
        raise UriTooLong()
    if _ENCODED_CONTROL.search(request.rel_url.raw_query_string):
        raise ControlInQuery()  # header splitting on the way upstream starts here
    raw = request.raw_headers
    if len(raw) > limits.max_headers:
        raise HeadersTooLarge()
    if sum(len(name) + len(value) + 4 for name, value in raw) > limits.max_header_bytes:
        raise HeadersTooLarge()
    if request.body_exists:
        length = request.content_length
        allowed = limits.max_body_bytes
        if request.method == "POST" and request.path == MANIFEST_PATH:
            allowed = limits.max_manifest_bytes
        if length is None or length > allowed:
            raise BodyNotAllowed()


def _client(request: web.Request, settings: ServerSettings, events: SecurityEvents) -> str:
    subject = None
    if settings.tls is not None and settings.tls.client_ca_file is not None:
        subject = peer_subject(request.get_extra_info("peercert"))
        allowed = settings.tls.allowed_client_subjects
        if allowed and not subject_allowed(subject, allowed):
            events.security_alert(
                "client-refused",
                subject or "(no client certificate)",
                "client certificate subject is not on server.tls.allowed_client_subjects",
            )
            raise ClientNotAllowed()
        request[EXCHANGE].client_subject = subject  # the audit trail names who, not just where
    return subject or request.remote or "unknown"


def _is_preflight(request: web.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def _origin_allowed(origin: str | None, cors: CorsPolicy) -> bool:
    if not origin or not cors.allowed_origins:
        return False
    if "*" in cors.allowed_origins:
        return True
    try:
        return origin_of(origin) in cors.allowed_origins
    except ValueError:
        return False


def _preflight(request: web.Request, cors: CorsPolicy) -> web.StreamResponse:
    origin = request.headers["Origin"]
    method = request.headers["Access-Control-Request-Method"].strip().upper()
    if not _origin_allowed(origin, cors) or method not in {"GET", "HEAD"}:
        raise CorsRefused()
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = "GET"
    response.headers["Access-Control-Allow-Headers"] = ", ".join(CORS_ALLOWED_HEADERS)
    response.headers["Access-Control-Max-Age"] = str(int(cors.max_age_s))
    response.headers["Vary"] = (
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    )
    return response


def cors_on_prepare(
    cors: CorsPolicy,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` handler adding CORS headers for an allowed ``Origin``."""

    async def add_cors(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if "Access-Control-Allow-Origin" in response.headers:
            return  # a preflight answer, already complete
        if not _origin_allowed(origin, cors):
            return
        assert origin is not None
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = ", ".join(CORS_EXPOSED_HEADERS)
        response.headers.add("Vary", "Origin")

    return add_cors
