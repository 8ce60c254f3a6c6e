"""The XC-WADO Retrieve [RAD-160] handler, for both gateway roles.

One request, in order: take the raw path below the endpoint, parse and validate it
(:mod:`routing.rad160`; nothing upstream is touched before every UID and OID has passed),
resolve it with the registry current when the request began (:mod:`routing.registry`), then
relay it (:mod:`gateway.relay.forward`), handing down the request's
:class:`~gateway.relay.handover.Relay`: nothing below this handler reads the application. Whether
this gateway acts as the initiating or the responding gateway is the registry's decision,
made from the homeCommunityId. A route whose upstream speaks SOAP (a ``rad-75`` community, a
``rad-69`` source) is handed to the XCA-I bridge (:func:`gateway.protocols.xca.fromweb.bridge`)
with what it needs from the application: the spool and the manifest cache.
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import InvalidHost
from gateway.exchange import Exchange
from gateway.keys import (
    BORDER,
    DIRECTORY,
    EXCHANGE,
    LIVE,
    MANIFEST_CACHE,
    METRICS,
    RELAY,
    SETTINGS,
    SPOOL,
)
from gateway.protocols.xca import fromweb
from gateway.protocols.xcwado.authority import public_authority
from gateway.protocols.xcwado.border import border_for
from gateway.protocols.xcwado.metadata import metadata_rewriter
from gateway.protocols.xcwado.rewrite import PrefixRewriter
from gateway.relay.forward import forward
from routing.errors import (
    InvalidIdentifier,
    InvalidRequestPath,
    RetrieveUrlRefused,
    UnknownCommunity,
    UnknownSource,
)
from routing.rad160 import Rad160Request, parse_rad160
from routing.registry import Route, RouteKind

__all__ = ["retrieve"]

_LOOKUP_FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (UnknownCommunity, "unknown-community"),
    (UnknownSource, "unknown-source"),
    (RetrieveUrlRefused, "retrieve-url-refused"),
)


async def retrieve(request: web.Request) -> web.StreamResponse:
    exchange = request[EXCHANGE]
    relay = request[RELAY]  # the pool, the registry and the telemetry, passed down explicitly
    settings = request.app[SETTINGS]
    metrics = request.app[METRICS]
    registry = relay.registry

    raw_path = request.rel_url.raw_path
    prefix = settings.base_path + "/"
    try:
        if not raw_path.startswith(prefix):
            raise InvalidRequestPath("path is not below the gateway endpoint")
        rad160 = parse_rad160(raw_path[len(prefix) :], request.rel_url.raw_query_string)
    except (InvalidIdentifier, InvalidRequestPath):
        metrics.lookups.labels("invalid").inc()
        raise
    _describe(exchange, rad160)

    try:
        try:
            route = registry.resolve(rad160)
        except (UnknownCommunity, UnknownSource):
            # Not in the static tables: the FHIR directory, when one is configured.
            route = await request.app[DIRECTORY].resolve(registry, rad160)
    except Exception as exc:
        for error_type, result in _LOOKUP_FAILURES:
            if isinstance(exc, error_type):
                metrics.lookups.labels(result).inc()
        raise
    metrics.lookups.labels(route.kind.value).inc()
    exchange.route_kind = route.kind.value
    if route.upstream.protocol.soap:  # a community or source that speaks only XCA-I
        return await fromweb.bridge(
            request,
            route,
            rad160,
            exchange,
            relay=relay,
            settings=settings.xca,
            spool=request.app[SPOOL],
            cache=request.app[MANIFEST_CACHE],
        )

    public_prefix = _public_prefix(request, route, rad160)
    request[BORDER] = border_for(route, public_prefix)  # for the answer's headers

    def rewriter_for(base: str, content_type: str) -> PrefixRewriter | None:
        """Metadata URLs through the border of the base URL that answered."""
        return metadata_rewriter(content_type, border_for(route, public_prefix, answered=base))

    return await forward(
        request,
        route,
        exchange,
        relay=relay,
        resource=rad160.kind,
        rewriter_for=rewriter_for,
    )


def _describe(exchange: Exchange, rad160: Rad160Request) -> None:
    exchange.resource = rad160.kind.value
    exchange.home_community_id = rad160.home_community_id
    exchange.retrieve_location_uid = rad160.retrieve_location_uid
    exchange.study_uid = rad160.study
    exchange.series_uid = rad160.series
    exchange.instance_uid = rad160.instance


def _public_prefix(request: web.Request, route: Route, rad160: Rad160Request) -> str:
    """What the upstream's base URL becomes in metadata: our URL for the same resource.

    The endpoint is ``server.public_url`` when configured; otherwise the request's scheme and
    the authority it reached us under (:mod:`.authority`). A malformed ``Host`` is
    refused (:class:`InvalidHost`) either way, before anything is sent upstream.
    """
    settings = request.app[LIVE].current  # public_url: SIGHUP may change it
    transport = request.transport
    local = transport.get_extra_info("sockname") if transport is not None else None
    address = (local[0], local[1]) if local else (settings.host, settings.port)
    try:
        authority = public_authority(
            request.headers.getall("Host", ()), scheme=request.scheme, local=address
        )
    except ValueError:
        raise InvalidHost() from None
    endpoint = settings.public_url or f"{request.scheme}://{authority}{settings.base_path}/"
    if route.kind is RouteKind.RELAY:
        # The responding gateway already wrote its own endpoint followed by the
        # homeCommunityId/… prefix; swapping its endpoint for ours is enough.
        return endpoint
    return endpoint + rad160.prefix
