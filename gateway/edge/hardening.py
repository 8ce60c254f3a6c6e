"""Inbound hardening: size limits, CORS, client certificates, per-client rate and stream caps.

One middleware (:func:`hardening_middleware`), inside the exchange middleware so that every
refusal is an exchange with a problem+json answer and a stable ``type``:

=====================================  ===========  ========================================
check, in order                        status       type (``urn:mado-gateway:problem:…``)
=====================================  ===========  ========================================
URL longer than ``max_url_bytes``      414          ``uri-too-long``
encoded CR, LF, NUL… in the query      400          ``invalid-request``
header bytes or count over the limit   431          ``headers-too-large``
a body on a route that takes none      413          ``request-body-not-allowed``
a body over the route's limit          413          ``request-body-too-large``
HTTP/1.0 on a streaming route          505          ``http-version-not-supported``
CORS preflight refused                 403          ``cors-origin-refused``,
                                                    ``cors-method-refused``,
                                                    ``cors-headers-refused`` (:mod:`.cors`)
client certificate subject not listed  403          ``client-not-allowed``
token bucket of the client empty       429          ``rate-limited`` (``Retry-After``)
client already at ``max_streams``      429          ``too-many-streams`` (``Retry-After``)
=====================================  ===========  ========================================

What each route takes is data (:mod:`gateway.edge.routes`). The rate and stream checks and the
subject check apply to the XC-WADO endpoint and ``/mado/retrieve``, not to ``/livez``,
``/readyz`` or ``/metrics``. A client is its verified certificate subject when it presented
one, else its address. Two rate classes: a client whose subject is listed under
``server.peer_gateways`` (an initiating gateway speaking for a whole community) has its own
bucket and stream count under the peer limits; every other client, the per-client ones.

The settings are read per request from :class:`~gateway.edge.reload.LiveSettings`, so a
reload (SIGHUP) changes limits, CORS and rate limits for the next request; a changed rate
limit starts with fresh buckets and stream counts. Limits and stream caps are per process:
with ``--workers N`` each worker keeps its own buckets, and the kernel spreads a client's
connections over the workers, so a client with many connections may get up to N times the
configured rate (a client on one connection, as a viewer usually is, gets exactly it).

Requests beyond aiohttp's own parser limits (set to twice ours by :func:`parser_limits`)
never reach any middleware: aiohttp answers those with a bare 400 and closes the connection.

A manifest may come with a Content-Length (checked here, before the handler runs) or chunked;
either way the handler reads it with :func:`read_manifest`, which stops at the limit.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.edge.cors import is_preflight, preflight
from gateway.edge.reload import LiveSettings
from gateway.edge.routes import ADMIN_ROUTE, MANIFEST_PATH, RoutePolicy, RouteTable
from gateway.errors import (
    BodyNotAllowed,
    BodyTooLarge,
    ClientNotAllowed,
    ControlInQuery,
    HeadersTooLarge,
    HttpVersionNotSupported,
    InboundRefused,
    RateLimited,
    TooManyStreams,
    UriTooLong,
)
from gateway.keys import EXCHANGE, LIVE
from gateway.relay.tls import peer_subject, subject_allowed
from gateway.settings import InboundLimits, RateLimit, ServerSettings
from gateway.sinks.metrics import Metrics

__all__ = [
    "MANIFEST_PATH",
    "ClientLimiter",
    "StreamReaderLike",
    "TokenBuckets",
    "body_limit",
    "hardening_middleware",
    "parser_limits",
    "read_limited",
    "read_manifest",
]


class StreamReaderLike(Protocol):
    """What :func:`read_limited` needs of a body (aiohttp's ``StreamReader`` has it)."""

    async def readany(self) -> bytes: ...


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


class _Limiters:
    """The two rate classes under the settings in force; new buckets when a policy changes."""

    def __init__(self) -> None:
        self._made: dict[str, ClientLimiter] = {}

    def get(self, kind: str, policy: RateLimit) -> ClientLimiter:
        limiter = self._made.get(kind)
        if limiter is None or limiter.policy != policy:
            limiter = self._made[kind] = ClientLimiter.create(policy)
        return limiter


def hardening_middleware(live: LiveSettings, metrics: Metrics, routes: RouteTable) -> Middleware:
    """The middleware described in the module docstring, for one application whose routes
    are ``routes``: each request is checked under the policy of the route serving its path,
    with the settings ``live`` holds when it arrives."""
    limiters = _Limiters()

    @web.middleware
    async def hardening(request: web.Request, handler: Handler) -> web.StreamResponse:
        served = routes.route_for(request.path)
        route = served.policy if served is not None else ADMIN_ROUTE
        settings = live.current
        if served is not None and request.method not in (*route.methods, "OPTIONS"):
            # before any size check: a method the route does not take is a 405, whatever
            # the request carries (RFC 9110 §15.5.6)
            raise web.HTTPMethodNotAllowed(request.method, route.methods)
        try:
            _check_sizes(request, route, settings.limits)
            if route.chunked_answer and request.version < (1, 1):
                raise HttpVersionNotSupported()
            if is_preflight(request):
                return preflight(request, route, settings.cors)
            if not route.limited:
                return await handler(request)
            client, subject = _client(request, settings)
            peers = settings.peer_gateways.subjects
            if peers and subject_allowed(subject, peers):
                limiter = limiters.get("peer", settings.peer_gateways.rate_limit)
            else:
                limiter = limiters.get("client", settings.rate_limit)
            limiter.admit(client)
            with limiter.stream(client):
                return await handler(request)
        except InboundRefused as exc:  # counted here; the exchange middleware answers it
            metrics.inbound_refusals.labels(exc.slug).inc()
            raise

    return hardening


async def read_manifest(request: web.Request) -> bytearray:
    """The body of ``POST /mado/retrieve``, with or without a Content-Length.

    Raises :class:`BodyTooLarge` (413, through the hardening middleware) as soon as more than
    ``server.limits.max_manifest_bytes`` have arrived: a chunked body is never read past it.
    """
    limit = request.app[LIVE].current.limits.max_manifest_bytes
    return await read_limited(request.content, limit)


def body_limit(route: RoutePolicy, limits: InboundLimits) -> int:
    """The most body bytes a request on ``route`` may send (it takes a body)."""
    return route.max_body_bytes if route.max_body_bytes is not None else limits.max_manifest_bytes


async def read_limited(content: StreamReaderLike, limit: int) -> bytearray:
    """Everything ``content`` delivers until its end; :class:`BodyTooLarge` past ``limit``."""
    body = bytearray()
    while chunk := await content.readany():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    return body  # not bytes(body): a manifest of tens of MB is held once, not twice


def _check_sizes(request: web.Request, route: RoutePolicy, limits: InboundLimits) -> None:
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
        if route.takes_body and request.method in route.methods:
            # Without a Content-Length the reader enforces the limit (read_body).
            limit = body_limit(route, limits)
            if length is not None and length > limit:
                raise BodyTooLarge(limit)
        elif length is None or length > limits.max_body_bytes:
            raise BodyNotAllowed()


def _client(
    request: web.Request, settings: ServerSettings
) -> tuple[str, str | None]:
    """(the key its limits are kept under, its verified certificate subject or None)."""
    subject = None
    if settings.tls is not None and settings.tls.client_ca_file is not None:
        subject = peer_subject(request.get_extra_info("peercert"))
        allowed = settings.tls.allowed_client_subjects
        if allowed and not subject_allowed(subject, allowed):
            raise ClientNotAllowed(subject)  # reported by the security sink, from the exchange
        request[EXCHANGE].client_subject = subject  # the audit trail names who, not just where
    return subject or request.remote or "unknown", subject
