"""The streaming core: send one request upstream and relay the answer without holding it.

Contract of :func:`forward` (the attempt phase is here, the stream phase in
:mod:`gateway.relay.stream`):

* Base URLs are tried in order. A failure before the upstream's response headers (connect
  error, TLS error, connection closed, timeout) or a 502/503/504 moves on to the next base URL;
  when none is left the last error is raised as a :class:`~gateway.errors.GatewayError`.
* Only a 2xx or a 304 is relayed. Any other status becomes
  :class:`~gateway.errors.UpstreamStatus`: a 4xx or 503 reaches the client with its
  ``Warning`` headers, anything else (5xx, 1xx, a 3xx not followed, a status outside
  100-599) as 502; the upstream's body never does. A multipart answer without a boundary
  RFC 2046 allows is :class:`~gateway.errors.UpstreamProtocol` (502): its end could not be
  checked. Neither is retried on another base URL unless the status is 502, 503 or 504.
* A relayable answer is streamed to the client (:func:`gateway.relay.stream.stream_answer`): always
  chunked, recorded before its terminating chunk, aborted — never ended — when the upstream's
  body does not end complete.
* Every failed attempt and every failover is logged at WARNING (a 4xx answer at INFO: it is
  an answer, not an outage) with the upstream's name and the base URL that failed, origin and
  base path only (:func:`~gateway.relay.upstream.loggable_base`).
* A client that goes away (write error or cancellation) ends the exchange ``aborted`` with
  cause ``client``; leaving ``async with`` closes the upstream connection, so the upstream
  stops sending too.
* Each call records one :class:`~gateway.exchange.Leg` on the exchange: every attempt with
  its typed result, the redirects and refusals (:mod:`gateway.relay.redirects`), a TLS failure as
  a refusal. Nothing here counts a metric or raises an alert: the sinks derive those from
  the leg. What the relay needs comes in a :class:`~gateway.relay.handover.Relay` the handler
  passes; nothing here reads the application.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from gateway.errors import (
    AddressRefused,
    GatewayError,
    RedirectNotFollowed,
    UpstreamProtocol,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.exchange import Attempt, Exchange, Failure, Leg, Refusal, RefusalKind
from gateway.relay.handover import Relay
from gateway.relay.headers import request_headers
from gateway.relay.multipart import MultipartError, boundary_in
from gateway.relay.redirects import Follower
from gateway.relay.stream import RewriterFor, stream_answer
from gateway.relay.takeover import WANT_RAW
from gateway.relay.tls import tls_failure
from gateway.relay.upstream import loggable_base
from routing.errors import RetrieveUrlRefused
from routing.media import MediaTypeError, parse_media_type
from routing.rad160 import ResourceKind
from routing.registry import Route, RouteKind
from routing.urlpolicy import UrlRefused, vet_url

__all__ = ["forward", "open_upstream"]

log = logging.getLogger("mado_gateway.forward")

_FAILOVER_STATUSES = frozenset({502, 503, 504})


async def forward(
    request: web.Request,
    route: Route,
    exchange: Exchange,
    *,
    relay: Relay,
    resource: ResourceKind,
    rewriter_for: RewriterFor | None = None,
) -> web.StreamResponse:
    """Relay ``request`` along ``route``; see the module docstring for the full contract.

    ``rewriter_for`` is the protocol's say on what, if anything, rewrites the answer's body,
    given the base URL that answered and its Content-Type (None: bytes pass unchanged).
    """
    # The answer's connection may be held at the end of its head for the pass-through copy
    # below aiohttp (gateway.relay.takeover); stream_answer takes it or releases it.
    token = WANT_RAW.set(True)
    try:
        async with open_upstream(
            request, route, exchange, resource=resource, relay=relay
        ) as (base, answer):
            leg = exchange.legs[-1]  # the one open_upstream opened
            content_type = answer.headers.get("Content-Type", "")
            rewriter = rewriter_for(base, content_type) if rewriter_for is not None else None
            return await stream_answer(
                request,
                answer,
                exchange,
                leg,
                rewriter,
                base=base,
                idle_s=route.upstream.timeouts.read_idle_s,
                telemetry=relay.telemetry,
            )
    finally:
        WANT_RAW.reset(token)


@contextlib.asynccontextmanager
async def open_upstream(
    request: web.Request,
    route: Route,
    exchange: Exchange,
    *,
    resource: ResourceKind,
    relay: Relay,
    accept: str | None = None,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str | None = None,
    leg: Leg | None = None,
) -> AsyncIterator[tuple[str, aiohttp.ClientResponse]]:
    """The first relayable answer along ``route``, as ``(base_url, answer)``: the attempt phase.

    Opens a new leg on ``exchange`` (``exchange.legs[-1]`` inside the block) and records
    every attempt on it. Base URLs are tried in order; redirects are followed under the
    upstream's redirect policy and every outbound address is checked
    (:mod:`gateway.relay.redirects`). Raises the :class:`~gateway.errors.GatewayError` of the last
    failure when no base URL gave a relayable answer (a 2xx or 304; a multipart one with a
    usable boundary). The answer's connection is released when the block ends. ``accept``
    replaces the consumer's Accept (a request the gateway makes on its own behalf);
    ``method``, ``body`` and ``content_type`` make it another request than a GET (a SOAP
    POST: the same ``body`` goes to each base URL tried). ``relay`` is what the handler was
    handed (:data:`~gateway.relay.handover.RELAY`). ``leg``: record on this leg of the
    exchange instead of opening a new one (many requests to one upstream as one leg: the
    bridge's per-document GETs), which is then not ``exchange.legs[-1]`` necessarily.
    """
    upstream = route.upstream
    if leg is None:
        leg = exchange.open_leg(upstream.name)
    headers = _outbound_headers(request, route, exchange, resource, accept)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if route.kind is RouteKind.RETRIEVE_URL:
        _vet_retrieve_url(route)
    failure: GatewayError | None = None
    with contextlib.ExitStack() as leases:
        follower = Follower(
            pool=relay.pool,
            leases=leases,
            config=relay.registry.config,
            upstream=upstream,
            leg=leg,
        )
        attempts = list(route.urls())
        for index, (base, url) in enumerate(attempts):
            following = attempts[index + 1][0] if index + 1 < len(attempts) else None
            leg.url = url
            try:
                answer = await follower.send(method, url, headers, body)
            except AddressRefused as exc:
                failure = exc
                _failed(exchange, leg, Attempt(base_url=base, failure=Failure.ADDRESS), following)
                continue
            except RedirectNotFollowed as exc:
                leg.status = exc.upstream_status
                exchange.error = "redirect"
                _failed(exchange, leg, Attempt(base_url=base, status=exc.upstream_status), None)
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = _unanswered(leg, url, exc)
                attempt = Attempt(base_url=base, failure=Failure(failure.reason))
                _failed(exchange, leg, attempt, following)
                continue
            async with answer:
                leg.status = answer.status
                failure = _refusal(upstream.name, answer)
                if failure is None:
                    leg.attempts.append(Attempt(base_url=base, status=answer.status))
                    yield base, answer
                    return
                retry = answer.status in _FAILOVER_STATUSES
                if isinstance(failure, UpstreamProtocol):  # an answer, but not one to relay
                    attempt = Attempt(base_url=base, status=answer.status, failure=Failure.PROTOCOL)
                else:
                    exchange.error = "status"
                    attempt = Attempt(base_url=base, status=answer.status)
                _failed(exchange, leg, attempt, following if retry else None)
                if not retry:
                    raise failure
    assert failure is not None  # at least one base URL was tried
    raise failure


def _outbound_headers(
    request: web.Request,
    route: Route,
    exchange: Exchange,
    resource: ResourceKind,
    accept: str | None,
) -> CIMultiDict[str]:
    headers = request_headers(request.headers, resource, exchange.request_id)
    if accept is not None:
        headers["Accept"] = accept
    if route.upstream.forward_authorization:
        for value in request.headers.getall("Authorization", ()):
            headers.add("Authorization", value)
    return headers


def _vet_retrieve_url(route: Route) -> None:
    """Refuse a Retrieve URL whose shape is unsafe (403), before anything is sent.

    The security event is raised where every :class:`RetrieveUrlRefused` passes, in the
    hardening middleware, so a refusal is reported once whichever check made it.
    """
    for _, url in route.urls():
        try:
            vet_url(url, allow_http=True)
        except UrlRefused as refusal:
            raise RetrieveUrlRefused(url, str(refusal.rule)) from None


def _unanswered(
    leg: Leg, url: str, exc: aiohttp.ClientError | TimeoutError
) -> UpstreamUnavailable | UpstreamTimeout | UpstreamProtocol:
    """The error for an attempt that got no answer (a TLS failure is also a refusal)."""
    reason = tls_failure(exc, https=url.startswith("https:"))
    if reason is None:
        return _classify(leg.upstream, exc)
    target = "/".join(url.split("/", 3)[:3])  # the origin
    log.error(
        "TLS with upstream failed: check the upstream's tls profile (ca_file, cert_file, "
        "key_file) and that the upstream trusts our client certificate",
        extra={"upstream": leg.upstream, "target": target, "tls_reason": reason},
    )
    leg.refusals.append(
        Refusal(
            kind=RefusalKind.TLS,
            target=target,
            detail=f"upstream {leg.upstream}: TLS failed ({reason})",
        )
    )
    return UpstreamUnavailable(leg.upstream, "tls")


def _refusal(upstream: str, answer: aiohttp.ClientResponse) -> GatewayError | None:
    """The error for an answer that is not to be relayed, or None when it is.

    Only a 2xx or a 304 (a conditional request's answer, without a body) is relayed;
    redirects never get here (the follower has followed or refused them). A multipart
    answer needs a boundary RFC 2046 allows: without one its end cannot be checked. A
    Content-Type that is not a media type is refused too: whether the body must be
    rewritten (metadata) or checked (multipart) cannot be told.
    """
    status = answer.status
    if not (200 <= status < 300 or status == 304):
        warnings = tuple(answer.headers.getall("Warning", ()))
        return UpstreamStatus(upstream, status, warnings)
    content_type = answer.headers.get("Content-Type")
    if content_type is None:
        return None
    try:
        media = parse_media_type(content_type)
    except MediaTypeError:
        return UpstreamProtocol(upstream, "a Content-Type that cannot be read")
    if media.type == "multipart":
        try:
            boundary_in(media)
        except MultipartError:
            return UpstreamProtocol(upstream, "a multipart body without a usable boundary")
    return None


def _classify(
    upstream: str, exc: BaseException
) -> UpstreamUnavailable | UpstreamTimeout | UpstreamProtocol:
    match exc:
        case aiohttp.ConnectionTimeoutError():
            return UpstreamTimeout(upstream, "connect")
        case aiohttp.SocketTimeoutError() | TimeoutError():
            return UpstreamTimeout(upstream, "read")
        case aiohttp.ClientSSLError():
            return UpstreamUnavailable(upstream, "tls")
        case aiohttp.ClientConnectorError():
            return UpstreamUnavailable(upstream, "connect")
        case aiohttp.ServerDisconnectedError() | aiohttp.ClientOSError():
            return UpstreamUnavailable(upstream, "closed")
        case aiohttp.ClientResponseError():  # the head could not be parsed
            return UpstreamProtocol(upstream, "a malformed HTTP head")
        case _:
            return UpstreamUnavailable(upstream, "protocol")


def _failed(exchange: Exchange, leg: Leg, attempt: Attempt, following: str | None) -> None:
    """Record a failed attempt and log it: WARNING, unless it is a 4xx (an answer, no outage).

    ``following`` is the base URL tried next (None: the failure is final). An attempt that
    got no relayable answer sets the exchange's error to its reason; a status (or a refused
    redirect) was set by the caller.
    """
    leg.attempts.append(attempt)
    if attempt.failure is not None:
        exchange.error = attempt.failure.value
    status = attempt.status
    answered = attempt.failure is None and status is not None and 400 <= status < 500
    log.log(
        logging.INFO if answered else logging.WARNING,
        "upstream failed; failing over to the next base URL"
        if following is not None
        else "upstream failed",
        extra={
            "upstream": leg.upstream,
            "base_url": loggable_base(attempt.base_url),
            "reason": exchange.error,
            "upstream_status": status if attempt.failure is None else None,
            "failover_to": None if following is None else loggable_base(following),
        },
    )
