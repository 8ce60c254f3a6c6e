"""The inbound route table as data: path → handler, protocol and policy (design.md §4).

The application is built from one :class:`RouteTable` (:func:`gateway.app.create_app`): the
table installs every handler, and the hardening middleware asks it which policy a path runs
under — also for a path no handler matches, such as a CORS preflight. Three kinds of policy:

==================  ==========================  ========  ====  ===========================
route               path                        methods   body  rate, streams, subjects
==================  ==========================  ========  ====  ===========================
``xc-wado``         ``{base_path}/…``           GET       no    per client or peer class
``manifest``        ``/mado/retrieve``          POST      yes   per client or peer class
``admin``           anything else (``/livez``)  GET/HEAD  no    not limited
==================  ==========================  ========  ====  ===========================

The methods are those a browser may be allowed by a CORS preflight (:mod:`gateway.edge.cors`),
and the request headers a page may send are listed per route: the manifest route also
accepts ``Content-Type`` (a page POSTs ``application/dicom`` or ``application/fhir+json``).
The one body there is, a manifest, is bounded by ``server.limits.max_manifest_bytes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.exchange import Exchange

__all__ = [
    "ADMIN_ROUTE",
    "EXPOSED_HEADERS",
    "ErrorRenderer",
    "MANIFEST_PATH",
    "MANIFEST_ROUTE",
    "RETRIEVE_ROUTE",
    "VIEWER_HEADERS",
    "Route",
    "RoutePolicy",
    "RouteTable",
]

MANIFEST_PATH = "/mado/retrieve"

VIEWER_HEADERS = (
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
"""What a viewer page sends with a retrieve request (all the routes accept these)."""

EXPOSED_HEADERS = (
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
"""Answer headers a page may read, whatever the route."""


ErrorRenderer = Callable[[BaseException, Exchange], web.StreamResponse]
"""How a protocol puts an error on the wire: the answer for ``exc``, recorded on the exchange
(status, outcome). One per protocol (design.md §9 rule 5); None on a policy: problem+json."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutePolicy:
    """What one kind of route takes.

    ``methods``: what a preflight may allow (exact, upper case). ``request_headers``: what a
    page may send (any letter case on the wire). ``takes_body``: a body is read, up to
    ``server.limits.max_manifest_bytes``, with or without a Content-Length; other routes take
    none beyond ``server.limits.max_body_bytes`` (and never a chunked one). ``limited``: the
    client subject check, rate and stream caps apply. ``chunked_answer``: answers are
    streamed with chunked framing (their end is the terminating chunk, written once the
    exchange is recorded), which HTTP/1.0 lacks, so HTTP/1.0 requests are refused with 505.
    ``max_body_bytes``: the body limit of a route that ``takes_body`` (None:
    ``server.limits.max_manifest_bytes``). ``errors``: the protocol's error renderer (None:
    problem+json), used for every error on the route, the edge's refusals included.
    """

    name: str
    methods: tuple[str, ...]
    request_headers: tuple[str, ...] = VIEWER_HEADERS
    takes_body: bool = False
    limited: bool = False
    chunked_answer: bool = False
    max_body_bytes: int | None = None
    errors: ErrorRenderer | None = None


RETRIEVE_ROUTE = RoutePolicy(name="xc-wado", methods=("GET",), limited=True, chunked_answer=True)
MANIFEST_ROUTE = RoutePolicy(
    name="manifest",
    methods=("POST",),
    request_headers=(*VIEWER_HEADERS, "Content-Type"),
    takes_body=True,
    limited=True,
    chunked_answer=True,
)
ADMIN_ROUTE = RoutePolicy(name="admin", methods=("GET", "HEAD"))  # probes may use either


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One entry: ``path`` (exact, or every path below it when ``below``), the handler that
    answers it for each of the policy's methods, and the policy it runs under."""

    path: str
    handler: Handler
    policy: RoutePolicy
    below: bool = False

    def serves(self, path: str) -> bool:
        return path.startswith(self.path + "/") if self.below else path == self.path


class RouteTable:
    """The routes of one application; a path no entry serves runs under :data:`ADMIN_ROUTE`."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        paths = [route.path for route in self.routes]
        if len(set(paths)) != len(paths):
            raise ValueError(f"two routes share a path: {sorted(paths)}")

    def route_for(self, path: str) -> Route | None:
        """The route that serves ``path``, or None."""
        return next((route for route in self.routes if route.serves(path)), None)

    def policy_for(self, path: str) -> RoutePolicy:
        """The policy of the route that serves ``path`` (the request's decoded path)."""
        for route in self.routes:
            if route.serves(path):
                return route.policy
        return ADMIN_ROUTE

    def install(self, app: web.Application) -> None:
        """Add every route's handler to ``app``'s router, once per method of its policy."""
        for route in self.routes:
            pattern = route.path + "/{tail:.*}" if route.below else route.path
            for method in route.policy.methods:
                app.router.add_route(method, pattern, route.handler)
