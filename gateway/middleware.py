"""The one middleware: request id, exchange record, error → problem+json, sinks, access log.

Every request gets an :class:`~gateway.exchange.Exchange`. Whatever the handler raises is
turned into a problem document here and nowhere else (design.md §9 rule 5). When the request
is over — answered, failed, aborted or cancelled — the exchange is sealed: it goes to every
sink once and one JSON access line is logged. A relay seals it itself, just before its last
bytes (:func:`seal`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import problem_for
from gateway.exchange import Exchange, Outcome
from gateway.keys import EXCHANGE, METRICS, SINKS
from gateway.logs import REQUEST_ID

__all__ = ["exchange_middleware", "problem_response", "seal"]

log = logging.getLogger("mado_gateway.access")
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@web.middleware
async def exchange_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request.headers.get("X-Request-ID"))
    token = REQUEST_ID.set(request_id)
    exchange = Exchange(
        request_id=request_id, method=request.method, path=request.path, client=request.remote
    )
    request[EXCHANGE] = exchange
    metrics = request.app[METRICS]
    metrics.in_flight.inc()
    try:
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            exchange.outcome = Outcome.ABORTED
            exchange.error = "client"
            raise
        except Exception as exc:  # the single place where errors become HTTP
            response = problem_response(exc, exchange)
        else:
            if not exchange.status:
                exchange.status = response.status
                exchange.outcome = Outcome.COMPLETE
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
        return response
    finally:
        metrics.in_flight.dec()
        seal(request, exchange)
        REQUEST_ID.reset(token)


def seal(request: web.Request, exchange: Exchange) -> None:
    """Hand the exchange to every sink and log it — once; later calls do nothing."""
    if exchange.sealed:
        return
    exchange.sealed = True
    exchange.finish()
    _deliver(request, exchange)


def problem_response(exc: BaseException, exchange: Exchange) -> web.Response:
    """Render ``exc`` as problem+json and record it on the exchange."""
    problem = problem_for(exc)
    exchange.status = problem.status
    exchange.outcome = Outcome.FAILED if exchange.attempts else Outcome.REFUSED
    if problem.slug == "internal-error":
        log.error("internal error", exc_info=exc)
    body = problem.body()
    body["request_id"] = exchange.request_id
    response = web.Response(
        status=problem.status,
        body=orjson.dumps(body),
        content_type="application/problem+json",
    )
    for name, value in problem.headers:
        response.headers.add(name, value)
    return response


def _deliver(request: web.Request, exchange: Exchange) -> None:
    for sink in request.app[SINKS]:
        try:
            sink.observe(exchange)
        except Exception:  # a sink must never break a response; log and go on
            log.exception("exchange sink failed", extra={"sink": type(sink).__name__})
    log.info(
        "exchange",
        extra={
            "method": exchange.method,
            "path": exchange.path,
            "status": exchange.status,
            "outcome": exchange.outcome.value,
            "route": exchange.route_kind,
            "upstream": exchange.upstream,
            "upstream_status": exchange.upstream_status,
            "attempts": exchange.attempts,
            "bytes": exchange.bytes_sent,
            "instances": len(exchange.instances),
            "ttfb_s": exchange.first_byte_s,
            "duration_s": exchange.duration_s,
            "error": exchange.error,
            "client": exchange.client,
        },
    )


def _request_id(offered: str | None) -> str:
    if offered and _CLIENT_REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex
