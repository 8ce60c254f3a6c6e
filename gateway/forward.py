"""The streaming core: send one request upstream and relay the answer without holding it.

Contract of :func:`forward` (the attempt phase is here, the stream phase in
:mod:`gateway.stream`):

* Base URLs are tried in order. A failure before the upstream's response headers (connect
  error, TLS error, connection closed, timeout) or a 502/503/504 moves on to the next base URL;
  when none is left the last error is raised as a :class:`~gateway.errors.GatewayError`.
* Only a 2xx or a 304 is relayed. Any other status becomes
  :class:`~gateway.errors.UpstreamStatus`: a 4xx or 503 reaches the client with its
  ``Warning`` headers, anything else (5xx, 1xx, a 3xx not followed, a status outside
  100-599) as 502; the upstream's body never does. A multipart answer without a boundary
  RFC 2046 allows is :class:`~gateway.errors.UpstreamProtocol` (502): its end could not be
  checked. Neither is retried on another base URL unless the status is 502, 503 or 504.
* A relayable answer is streamed to the client (:func:`gateway.stream.stream_answer`): always
  chunked, recorded before its terminating chunk, aborted — never ended — when the upstream's
  body does not end complete.
* Every failed attempt and every failover is logged at WARNING (a 4xx answer at INFO: it is
  an answer, not an outage) with the upstream's name and the base URL that failed, origin and
  base path only (:func:`~gateway.upstream.loggable_base`).
* A client that goes away (write error or cancellation) ends the exchange ``aborted`` with
  cause ``client``; leaving ``async with`` closes the upstream connection, so the upstream
  stops sending too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.border import border_for
from gateway.errors import (
    AddressRefused,
    GatewayError,
    RedirectNotFollowed,
    UpstreamProtocol,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.exchange import Exchange
from gateway.headers import request_headers
from gateway.keys import HOLDER, METRICS, POOL, SECURITY
from gateway.multipart import MultipartError, boundary_of
from gateway.redirects import Follower
from gateway.rewrite import metadata_rewriter
from gateway.security import SecurityEvents
from gateway.stream import stream_answer
from gateway.tls import tls_failure
from gateway.upstream import UpstreamPool, loggable_base
from routing.errors import RetrieveUrlRefused
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
    pool: UpstreamPool,
    resource: ResourceKind,
    public_prefix: str | None,
) -> web.StreamResponse:
    """Relay ``request`` along ``route``; see the module docstring for the full contract.

    ``public_prefix`` is what the upstream's base URL becomes in rewritten metadata (None:
    no rewriting).
    """
    async with open_upstream(request, route, exchange, resource=resource, pool=pool) as (
        base,
        answer,
    ):
        rewriter = None
        if public_prefix:
            border = border_for(route, public_prefix, answered=base)
            rewriter = metadata_rewriter(answer.headers.get("Content-Type", ""), border)
        idle_s = route.upstream.timeouts.read_idle_s
        return await stream_answer(request, answer, exchange, rewriter, base=base, idle_s=idle_s)


@contextlib.asynccontextmanager
async def open_upstream(
    request: web.Request,
    route: Route,
    exchange: Exchange,
    *,
    resource: ResourceKind,
    pool: UpstreamPool | None = None,
    accept: str | None = None,
) -> AsyncIterator[tuple[str, aiohttp.ClientResponse]]:
    """The first relayable answer along ``route``, as ``(base_url, answer)``: the attempt phase.

    Base URLs are tried in order; redirects are followed under the upstream's redirect
    policy and every outbound address is checked (:mod:`gateway.redirects`). Raises the
    :class:`~gateway.errors.GatewayError` of the last failure when no base URL gave a
    relayable answer (a 2xx or 304; a multipart one with a usable boundary). The answer's
    connection is released when the block ends. ``accept`` replaces the consumer's Accept (a
    request the gateway makes on its own behalf, such as a manifest's).
    """
    config = request.app[HOLDER].registry.config
    events = request.app[SECURITY]
    upstream = route.upstream
    exchange.upstream = upstream.name
    headers = request_headers(request.headers, resource, exchange.request_id)
    if accept is not None:
        headers["Accept"] = accept
    if upstream.forward_authorization:
        for value in request.headers.getall("Authorization", ()):
            headers.add("Authorization", value)
    if route.kind is RouteKind.RETRIEVE_URL:
        _vet_retrieve_url(route)
    failure: GatewayError | None = None
    with contextlib.ExitStack() as leases:
        follower = Follower(
            pool=pool or request.app[POOL],
            leases=leases,
            config=config,
            upstream=upstream,
            metrics=request.app[METRICS],
            events=events,
            exchange=exchange,
        )
        attempts = list(route.urls())
        for index, (base, url) in enumerate(attempts):
            following = attempts[index + 1][0] if index + 1 < len(attempts) else None
            exchange.attempts += 1
            exchange.upstream_url = url
            try:
                answer = await follower.get(url, headers)
            except AddressRefused as exc:
                failure = exc
                _note_failure(exchange, failure, base, following)
                continue
            except RedirectNotFollowed as exc:
                exchange.upstream_status = exc.upstream_status
                exchange.attempt_results.append(_status_class(exc.upstream_status))
                _note_failure(exchange, exc, base, None)
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = _unanswered(upstream.name, url, exc, events)
                _note_failure(exchange, failure, base, following)
                continue
            async with answer:
                exchange.upstream_status = answer.status
                failure = _refusal(upstream.name, answer)
                if not isinstance(failure, UpstreamProtocol):  # that one counts as an error
                    exchange.attempt_results.append(_status_class(answer.status))
                if failure is None:
                    yield base, answer
                    return
                retry = answer.status in _FAILOVER_STATUSES
                _note_failure(exchange, failure, base, following if retry else None)
                if not retry:
                    raise failure
    assert failure is not None  # at least one base URL was tried
    raise failure


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
    upstream: str, url: str, exc: aiohttp.ClientError | TimeoutError, events: SecurityEvents
) -> GatewayError:
    """The error for an attempt that got no answer (a TLS failure is also a security event)."""
    reason = tls_failure(exc, https=url.startswith("https:"))
    if reason is None:
        return _classify(upstream, exc)
    _tls_failed(upstream, url, reason, events)
    return UpstreamUnavailable(upstream, "tls")


def _tls_failed(upstream: str, url: str, reason: str, events: SecurityEvents) -> None:
    origin = url.split("/", 3)[:3]
    target = "/".join(origin)
    log.error(
        "TLS with upstream failed: check the upstream's tls profile (ca_file, cert_file, "
        "key_file) and that the upstream trusts our client certificate",
        extra={"upstream": upstream, "target": target, "tls_reason": reason},
    )
    events.security_alert("tls-failure", target, f"upstream {upstream}: TLS failed ({reason})")


def _refusal(upstream: str, answer: aiohttp.ClientResponse) -> GatewayError | None:
    """The error for an answer that is not to be relayed, or None when it is.

    Only a 2xx or a 304 (a conditional request's answer, without a body) is relayed;
    redirects never get here (the follower has followed or refused them). A multipart
    answer needs a boundary RFC 2046 allows: without one its end cannot be checked.
    """
    status = answer.status
    if not (200 <= status < 300 or status == 304):
        warnings = tuple(answer.headers.getall("Warning", ()))
        return UpstreamStatus(upstream, status, warnings)
    content_type = answer.headers.get("Content-Type", "")
    if content_type.lstrip().lower().startswith("multipart/"):
        try:
            boundary_of(content_type)
        except MultipartError:
            return UpstreamProtocol(upstream, "a multipart body without a usable boundary")
    return None


def _status_class(status: int) -> str:
    """The bounded metric label of an upstream status: 1xx…5xx, or "other"."""
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


def _classify(upstream: str, exc: BaseException) -> GatewayError:
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


def _note_failure(
    exchange: Exchange, failure: GatewayError, base: str, following: str | None
) -> None:
    """Record a failed attempt and log it: WARNING, unless it is a 4xx (an answer, no outage).

    ``following`` is the base URL tried next (None: the failure is final).
    """
    status = getattr(failure, "upstream_status", None)
    if isinstance(failure, UpstreamStatus):
        exchange.error = "status"
    elif isinstance(failure, RedirectNotFollowed):
        exchange.error = "redirect"
    else:  # no answer at all, or one that cannot be relayed: the reason says which
        exchange.error = getattr(failure, "reason", failure.slug)
        exchange.attempt_results.append(exchange.error)
    answered = isinstance(failure, UpstreamStatus) and 400 <= failure.upstream_status < 500
    log.log(
        logging.INFO if answered else logging.WARNING,
        "upstream failed; failing over to the next base URL"
        if following is not None
        else "upstream failed",
        extra={
            "upstream": exchange.upstream,
            "base_url": loggable_base(base),
            "reason": exchange.error,
            "upstream_status": status,
            "failover_to": None if following is None else loggable_base(following),
        },
    )
