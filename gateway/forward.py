"""The streaming core: send one request upstream and relay the answer without holding it.

Contract of :func:`forward`:

* Base URLs are tried in order. A failure before the upstream's response headers (connect
  error, TLS error, connection closed, timeout) or a 502/503/504 moves on to the next base URL;
  when none is left the last error is raised as a :class:`~gateway.errors.GatewayError`.
* An upstream error status (4xx, 5xx) becomes :class:`~gateway.errors.UpstreamStatus`: the
  status and its ``Warning`` headers reach the client, the upstream's body does not.
* A 2xx answer is relayed: status, end-to-end headers, then the body chunk by chunk as it
  arrives, always with chunked transfer encoding. The exchange is recorded (audit journal
  included) before the terminating chunk, so no client ever holds a complete answer whose
  record could still be lost. Each write waits until the client's socket has room
  (backpressure), and the upstream socket is paused while our read buffer is full, so memory
  per stream stays bounded whatever the size of the study and the speed of the client.
* Once the response has started, an upstream failure — including a multipart body that ends
  without its closing boundary — aborts the client's connection (no terminating chunk) and
  marks the exchange ``aborted``: a truncated body never ends like a complete one.
* A client that goes away (write error or cancellation) ends the exchange ``aborted`` with
  cause ``client``; leaving ``async with`` closes the upstream connection, so the upstream
  stops sending too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import aiohttp
from aiohttp import web

from gateway.errors import (
    AddressRefused,
    GatewayError,
    RedirectNotFollowed,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.exchange import Exchange, Outcome
from gateway.headers import request_headers, response_headers
from gateway.keys import HOLDER, METRICS, POOL, SECURITY
from gateway.middleware import seal
from gateway.multipart import MultipartError, boundary_of
from gateway.partscan import PartScanner
from gateway.redirects import Follower
from gateway.rewrite import PrefixRewriter, is_rewritable
from gateway.security import SecurityEvents
from gateway.tls import tls_failure
from gateway.upstream import UpstreamPool
from routing.errors import RetrieveUrlRefused
from routing.rad160 import ResourceKind
from routing.registry import Route, RouteKind
from routing.urlpolicy import UrlRefused, vet_url

__all__ = ["forward", "open_upstream"]

log = logging.getLogger("mado_gateway.forward")

_FAILOVER_STATUSES = frozenset({502, 503, 504})
_EPILOGUE_ALLOWANCE = 256


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
        if public_prefix and is_rewritable(answer.headers.get("Content-Type", "")):
            rewriter = PrefixRewriter(base.encode(), public_prefix.encode())
        return await _relay(request, answer, exchange, rewriter)


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
    """The first 2xx answer along ``route``, as ``(base_url, answer)``; the attempt phase.

    Base URLs are tried in order; redirects are followed under the upstream's redirect
    policy and every outbound address is checked (:mod:`gateway.redirects`). Raises the
    :class:`~gateway.errors.GatewayError` of the last failure when no base URL gave a 2xx.
    The answer's connection is released when the block ends. ``accept`` replaces the
    consumer's Accept (a request the gateway makes on its own behalf, such as a manifest's).
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
        for base, url in route.urls():
            exchange.attempts += 1
            exchange.upstream_url = url
            try:
                answer = await follower.get(url, headers)
            except AddressRefused as exc:
                failure = exc
                _note_failure(exchange, failure)
                continue
            except RedirectNotFollowed as exc:
                exchange.upstream_status = exc.upstream_status
                exchange.attempt_results.append(f"{exc.upstream_status // 100}xx")
                _note_failure(exchange, exc)
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = tls_failure(exc, https=url.startswith("https:"))
                if reason is not None:
                    _tls_failed(upstream.name, url, reason, events)
                    failure = UpstreamUnavailable(upstream.name, "tls")
                else:
                    failure = _classify(upstream.name, exc)
                _note_failure(exchange, failure)
                continue
            async with answer:
                exchange.upstream_status = answer.status
                exchange.attempt_results.append(f"{answer.status // 100}xx")
                failure = _refusal(upstream.name, answer)
                if failure is None:
                    yield base, answer
                    return
                _note_failure(exchange, failure)
                if answer.status not in _FAILOVER_STATUSES:
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
    """The error for a non-2xx answer, or None when the answer is to be relayed."""
    status = answer.status
    if 200 <= status < 300 or status == 304:  # 304: a conditional request's answer, no body
        return None
    # Redirects never get here: the follower has followed or refused them.
    warnings = tuple(answer.headers.getall("Warning", ()))
    return UpstreamStatus(upstream, status, warnings)


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
        case _:
            return UpstreamUnavailable(upstream, "protocol")


def _note_failure(exchange: Exchange, failure: GatewayError) -> None:
    if isinstance(failure, UpstreamStatus):
        exchange.error = "status"
    elif isinstance(failure, RedirectNotFollowed):
        exchange.error = "redirect"
    else:  # no answer at all: the attempt's result is the reason
        exchange.error = getattr(failure, "reason", failure.slug)
        exchange.attempt_results.append(exchange.error)


async def _relay(
    request: web.Request,
    answer: aiohttp.ClientResponse,
    exchange: Exchange,
    rewriter: PrefixRewriter | None,
) -> web.StreamResponse:
    # Always chunked, never the upstream's Content-Length: only the terminating chunk then
    # says "complete", and it is written after the exchange is in the audit journal, so a
    # gateway killed at that moment can never have delivered an unrecorded answer.
    response = web.StreamResponse(status=answer.status, headers=response_headers(answer.headers))
    response.enable_chunked_encoding()
    boundary = _boundary(answer.headers)
    closing = None if boundary is None else b"--" + boundary.encode("latin-1") + b"--"
    scanner = None
    if boundary is not None and rewriter is None and _carries_dicom(answer.headers):
        scanner = PartScanner(boundary, exchange.instances.append)
    await response.prepare(request)
    exchange.status = answer.status
    exchange.mark_first_byte()

    progress = _Progress()
    try:
        await _copy(answer.content, response.write, progress, rewriter, scanner)
    except ConnectionResetError:  # first: aiohttp's write error is also a ClientError
        _abort(request, exchange, "client")
        return response
    except (aiohttp.ClientError, TimeoutError) as exc:
        _abort(request, exchange, "stalled" if isinstance(exc, TimeoutError) else "truncated")
        return response
    finally:
        exchange.bytes_sent = progress.sent
        if scanner is not None:
            scanner.close()
    if closing is not None and not _ends_with(progress.previous, progress.last, closing):
        _abort(request, exchange, "truncated")
        return response
    # Complete: record it (audit journal included) before the terminating chunk tells the
    # client so. The answer is always chunked for this reason (see _relay).
    exchange.outcome = Outcome.COMPLETE
    seal(request, exchange)
    with contextlib.suppress(ConnectionResetError):  # the client left before the last chunk
        await response.write_eof()
    return response


class _Progress:
    """What :func:`_copy` has done so far, readable after it raised."""

    __slots__ = ("last", "previous", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.previous = self.last = b""  # the last two blocks read, for the boundary check


async def _copy(
    content: aiohttp.StreamReader,
    write: Callable[[bytes], Awaitable[None]],
    progress: _Progress,
    rewriter: PrefixRewriter | None,
    scanner: PartScanner | None,
) -> None:
    """Copy the upstream body to the client until its end; errors propagate.

    The hot loops: one ``readany()`` and one ``write()`` per buffered block (each write waits
    for the client's socket: backpressure), no copies and no other per-block work beyond what
    the variant needs. The closing-boundary check only needs the last two blocks kept.
    """
    sent = 0
    previous = last = b""
    try:
        if rewriter is not None:  # metadata: URLs rewritten on the fly
            while chunk := await content.readany():
                out = rewriter.feed(chunk)
                await write(out)
                sent += len(out)
                previous, last = last, chunk
            out = rewriter.flush()
            await write(out)
            sent += len(out)
        elif scanner is not None:  # DICOM instances: note who and what each part is about
            feed = scanner.feed
            while chunk := await content.readany():
                await write(chunk)
                sent += len(chunk)
                feed(chunk)
                previous, last = last, chunk
        else:
            while chunk := await content.readany():
                await write(chunk)
                sent += len(chunk)
                previous, last = last, chunk
    finally:
        progress.sent, progress.previous, progress.last = sent, previous, last


def _boundary(headers: Mapping[str, str]) -> str | None:
    """The boundary parameter of a multipart answer (RFC 2046 §5.1.1), else None."""
    content_type = headers.get("Content-Type", "")
    if not content_type.lower().startswith("multipart/"):
        return None
    try:
        return boundary_of(content_type)
    except MultipartError:
        return None


def _carries_dicom(headers: Mapping[str, str]) -> bool:
    """multipart/related with ``type="application/dicom"`` (PS3.18 §8.7.3.5)."""
    content_type = headers.get("Content-Type", "").lower().replace(" ", "")
    return (
        'type="application/dicom"' in content_type
        or "type=application/dicom;" in content_type + ";"
    )


def _ends_with(previous: bytes, last: bytes, closing: bytes) -> bool:
    """Whether the body's last bytes hold the closing delimiter (a short epilogue is allowed)."""
    window = len(closing) + _EPILOGUE_ALLOWANCE
    tail = last[-window:] if len(last) >= window else previous[-(window - len(last)) :] + last
    return closing in tail


def _abort(request: web.Request, exchange: Exchange, reason: str) -> None:
    """Cut the client connection without the terminating chunk, so truncation is visible.

    The handler then returns the prepared response; aiohttp's final ``write_eof`` meets a
    closed transport and writes nothing.
    """
    exchange.outcome = Outcome.ABORTED
    exchange.error = reason
    if reason != "client":
        exchange.attempt_results.append(reason)
    transport = request.transport
    if transport is not None:
        transport.abort()
