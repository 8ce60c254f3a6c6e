"""The one middleware: request id, exchange record, error → the wire, sinks, access log.

Every request gets an :class:`~gateway.exchange.Exchange` and a
:class:`~gateway.relay.handover.Relay` (what the handler may hand the relay: the upstream pool, the
registry, the telemetry). Whatever the handler raises is put on the wire here and nowhere
else (design.md §9 rule 5), by the error renderer of the route's protocol
(:attr:`~gateway.edge.routes.RoutePolicy.errors`: a SOAP Fault on the XCA-I endpoint), or
as a problem document (RFC 9457). When the request is over — answered, failed,
aborted or cancelled — the exchange is sealed: it goes to every sink once and one JSON
access line is logged. A cancelled handler ends ``aborted`` with the error ``client`` (aiohttp
cancels the handler of a client that went away) or ``shutdown`` (the drain after SIGTERM cut
it: :mod:`gateway.edge.drain`); each handler is registered with the drain while it runs.
A relay seals the exchange itself, just before its last bytes, through the telemetry it was
handed (:class:`Delivery`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Sequence

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.edge.routes import ErrorRenderer, RouteTable
from gateway.edge.upstreams import shown_base
from gateway.errors import problem_for, refusal_for
from gateway.exchange import Exchange, ExchangeSink, Leg, LegSink, Outcome
from gateway.keys import DRAIN, EXCHANGE, HOLDER, LEG_SINKS, METRICS, POOL, SECURITY, SINKS
from gateway.relay.handover import RELAY, Relay
from gateway.sinks.logs import REQUEST_ID, utc_stamp
from gateway.sinks.security import SecurityAlerts

__all__ = ["Delivery", "exchange_middleware", "problem_response", "request_id_on_prepare", "seal"]

log = logging.getLogger("mado_gateway.access")
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class Delivery:
    """The application's sinks as the :class:`~gateway.exchange.Telemetry` a relay is handed.

    Security alerts are derived from the legs (:class:`~gateway.sinks.security.SecurityAlerts`):
    a leg's refusals go out when its answer is about to reach the client, or at the seal
    for a leg never answered — so an alert is in the audit journal before the first byte of
    a stream that failed over, not after its last.
    """

    __slots__ = ("_legs", "_sinks")

    def __init__(self, sinks: Sequence[ExchangeSink], leg_sinks: Sequence[LegSink]) -> None:
        self._sinks = sinks
        self._legs = leg_sinks

    def answered(self, exchange: Exchange, leg: Leg) -> None:
        now = exchange.elapsed()
        if leg.first_byte_s is None:
            leg.first_byte_s = now
        if exchange.first_byte_s is None:
            exchange.first_byte_s = now
        for sink in self._legs:
            try:
                sink.answered(exchange, leg)
            except Exception:  # a sink must never break a response; log and go on
                log.exception("leg sink failed", extra={"sink": type(sink).__name__})

    def seal(self, exchange: Exchange) -> None:
        """Hand the exchange to every sink and log it — once; later calls do nothing."""
        if exchange.sealed:
            return
        exchange.sealed = True
        exchange.finish()
        for sink in self._sinks:
            try:
                sink.observe(exchange)
            except Exception:  # a sink must never break a response; log and go on
                log.exception("exchange sink failed", extra={"sink": type(sink).__name__})
        _access_line(exchange)


def delivery(app: web.Application) -> Delivery:
    """The sinks of ``app``: its exchange sinks and leg sinks (the audit trail's Begin
    Transferring), security alerts derived from legs first."""
    alerts = SecurityAlerts(app[SECURITY])
    return Delivery([alerts, *app[SINKS]], [alerts, *app.get(LEG_SINKS, ())])


def exchange_middleware(routes: RouteTable) -> Middleware:
    """The middleware for an application whose routes are ``routes`` (whose policies say how
    each protocol renders an error)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        render = routes.policy_for(request.path).errors or problem_response
        return await _exchange(request, handler, render)

    return middleware


async def _exchange(
    request: web.Request, handler: Handler, render: ErrorRenderer
) -> web.StreamResponse:
    offered = _offered_id(request.headers.get("X-Request-ID"))
    own = uuid.uuid4().hex
    request_id = offered or own
    token = REQUEST_ID.set(request_id)
    exchange = Exchange(
        request_id=request_id,
        method=request.method,
        path=request.path,
        client=request.remote,
        exchange_id=own if offered else None,  # the client's id may not be unique
    )
    request[EXCHANGE] = exchange
    app = request.app
    telemetry = delivery(app)
    request[RELAY] = Relay(pool=app[POOL], registry=app[HOLDER].registry, telemetry=telemetry)
    metrics = app[METRICS]
    metrics.in_flight.inc()
    drain = app[DRAIN]
    task = asyncio.current_task()
    drain.enter(task)
    try:
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            exchange.outcome = Outcome.ABORTED
            exchange.error = drain.abort_cause()
            if drain.expired and request.transport is not None:
                request.transport.abort()  # a cut, never a clean end of a short answer
            raise
        except Exception as exc:  # the single place where errors become HTTP
            refusal = refusal_for(exc)
            if refusal is not None:  # the security sink reports it when the exchange is sealed
                exchange.refusals.append(refusal)
            response = render(exc, exchange)
        else:
            if not exchange.status:
                exchange.status = response.status
                exchange.outcome = Outcome.COMPLETE
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
        return response
    finally:
        drain.leave(task)
        metrics.in_flight.dec()
        telemetry.seal(exchange)
        REQUEST_ID.reset(token)


def seal(request: web.Request, exchange: Exchange) -> None:
    """Seal ``exchange`` through the request's telemetry (for handlers that hold the request;
    a relay is handed the telemetry instead)."""
    request[RELAY].telemetry.seal(exchange)


def problem_response(exc: BaseException, exchange: Exchange) -> web.Response:
    """Render ``exc`` as problem+json and record it on the exchange (the default
    :data:`~gateway.edge.routes.ErrorRenderer`)."""
    problem = problem_for(exc)
    exchange.status = problem.status
    exchange.outcome = Outcome.FAILED if exchange.contacted else Outcome.REFUSED
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
    if getattr(exc, "close_connection", False):
        response.force_close()
    return response


def _access_line(exchange: Exchange) -> None:
    """The one line per request that answers, alone: who (address, certificate subject),
    what (transaction, path, community, location, study/series/instance, instances and
    bytes), when (``started`` and the line's own time), from where (the upstream, the base
    URL that answered and every attempt's outcome), how long (``ttfb_s``, ``duration_s``)
    and how it ended (``status``, ``outcome``, ``error``)."""
    leg = exchange.leg
    answered = next(
        (a for leg_ in reversed(exchange.legs) for a in reversed(leg_.attempts) if a.status),
        None,
    )
    log.info(
        "exchange",
        extra={
            "method": exchange.method,
            "path": exchange.path,
            "status": exchange.status,
            "outcome": exchange.outcome.value,
            "route": exchange.route_kind,
            "transaction": exchange.transaction,
            "home_community_id": exchange.home_community_id,
            "retrieve_location_uid": exchange.retrieve_location_uid,
            "study": exchange.study_uid,
            "series": exchange.series_uid,
            "instance": exchange.instance_uid,
            "upstream": leg.upstream if leg is not None else None,
            "upstream_status": leg.status if leg is not None else None,
            "base_url": shown_base(answered.base_url) if answered is not None else None,
            "attempts": sum(len(leg.attempts) for leg in exchange.legs),
            "failures": [
                f"{leg_.upstream} {shown_base(a.base_url)}: {a.failure.value}"
                for leg_ in exchange.legs
                for a in leg_.attempts
                if a.failure is not None
            ],
            "bytes": exchange.bytes_sent,
            "instances": len(exchange.instances),
            "started": utc_stamp(exchange.started_wall),
            "ttfb_s": exchange.first_byte_s,
            "duration_s": exchange.duration_s,
            "error": exchange.error,
            "client": exchange.client,
            "client_subject": exchange.client_subject,
            "exchange_id": exchange.exchange_id,
        },
    )


def _offered_id(offered: str | None) -> str | None:
    if offered and _CLIENT_REQUEST_ID.fullmatch(offered):
        return offered
    return None


async def request_id_on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer names its exchange in ``X-Request-ID``, streamed ones included.

    Streamed answers are prepared by the handler, before the exchange middleware sees them,
    so the header is set here, as the status line and headers are about to be written.
    """
    exchange = request.get(EXCHANGE)
    if exchange is not None and "X-Request-ID" not in response.headers:
        response.headers["X-Request-ID"] = exchange.request_id
