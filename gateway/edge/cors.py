"""CORS for browser viewers (MADO Rev 1.1 §X.5), answered per route.

A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) is decided
by :func:`check_preflight` against the route's :class:`~gateway.edge.routes.RoutePolicy`, in this
order, and each refusal is a 403 problem that names what was refused:

=====================================  =========================  ===========================
refused because                        ``type`` (problem)         ``detail`` names
=====================================  =========================  ===========================
origin not in ``cors.allowed_origins``  ``cors-origin-refused``    the origin rule
method not taken by the route          ``cors-method-refused``    the method and the route's
a request header the route does not    ``cors-headers-refused``   the header
accept from a page
=====================================  =========================  ===========================

An admitted preflight is answered 204 with exactly the route's methods (``GET`` for the
XC-WADO endpoint, ``POST`` for ``/mado/retrieve``) and its request headers. Every other
answer to an allowed origin — the multipart answer to a POSTed manifest included — carries
``Access-Control-Allow-Origin`` and exposes the headers a viewer reads
(:func:`cors_on_prepare`). Methods compare exactly, as the Fetch standard has browsers send
them; header names compare in any letter case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.edge.routes import EXPOSED_HEADERS, RoutePolicy
from gateway.errors import CorsHeadersRefused, CorsMethodRefused, CorsRefused
from gateway.settings import CorsPolicy
from routing.model import origin_of

__all__ = ["check_preflight", "cors_on_prepare", "is_preflight", "origin_allowed", "preflight"]

_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


def is_preflight(request: web.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def origin_allowed(origin: str | None, cors: CorsPolicy) -> bool:
    """Whether a page from ``origin`` may read the gateway's answers."""
    if not origin or not cors.allowed_origins:
        return False
    if "*" in cors.allowed_origins:
        return True
    try:
        return origin_of(origin) in cors.allowed_origins
    except ValueError:
        return False


def check_preflight(
    route: RoutePolicy, cors: CorsPolicy, origin: str, method: str, requested_headers: str
) -> dict[str, str]:
    """The headers of the 204 answer to a preflight; raises a :class:`CorsRefused` (see the
    module docstring for which one, in which order)."""
    if not origin_allowed(origin, cors):
        raise CorsRefused()
    method = method.strip()
    if method not in route.methods:
        raise CorsMethodRefused(method, route.methods)
    accepted = {name.lower() for name in route.request_headers}
    for item in requested_headers.split(","):
        name = item.strip()
        if name and name.lower() not in accepted:
            raise CorsHeadersRefused(name)
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ", ".join(route.methods),
        "Access-Control-Allow-Headers": ", ".join(route.request_headers),
        "Access-Control-Max-Age": str(int(cors.max_age_s)),
        "Vary": _VARY,
    }


def preflight(request: web.Request, route: RoutePolicy, cors: CorsPolicy) -> web.Response:
    """The 204 answer to a preflight request; raises as :func:`check_preflight`."""
    headers = check_preflight(
        route,
        cors,
        request.headers["Origin"],
        request.headers["Access-Control-Request-Method"],
        request.headers.get("Access-Control-Request-Headers", ""),
    )
    return web.Response(status=204, headers=headers)


def cors_on_prepare(
    cors: Callable[[], CorsPolicy],
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` handler adding CORS headers for an allowed ``Origin``,
    under the policy ``cors()`` gives at that moment (a reload may change it)."""
    exposed = ", ".join(EXPOSED_HEADERS)

    async def add_cors(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if "Access-Control-Allow-Origin" in response.headers:
            return  # a preflight answer, already complete
        if origin is None or not origin_allowed(origin, cors()):
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = exposed
        response.headers.add("Vary", "Origin")

    return add_cors
