"""Every error on the XCA-I endpoint put on the wire: the route's
:data:`~gateway.edge.routes.ErrorRenderer` (design.md §9 rule 5; digest §9 items 2, 5).

=========================================  ======  =========================================
error                                      HTTP    answer
=========================================  ======  =========================================
:class:`~.errors.SoapFault`                400     SOAP 1.2 Fault, code ``Sender``
                                           500     … code ``Receiver`` (``VersionMismatch``)
:class:`UnsupportedMediaType`              415     Fault ``Sender``: neither SOAP nor MTOM
:class:`~.errors.InvalidRequest`           200     Failure RetrieveDocumentSetResponse
                                                   (MTOM, root part only); no upstream asked
:class:`~gateway.errors.InboundRefused`,   its     Fault (``Sender`` for 4xx, ``Receiver``
:class:`~gateway.errors.GatewayError`,     own     for 5xx) with that status and its headers
``aiohttp.web.HTTPException``                      (``Retry-After``, ``Allow``)
anything else                              500     Fault ``Receiver``, "internal error"
=========================================  ======  =========================================

A Fault's reason is always this module's (or :mod:`.errors`') own sentence: never an
upstream's text, a parser's message or a refusal's problem detail (written for DICOMweb
clients). A Fault relates (``wsa:RelatesTo``) to the request's ``wsa:MessageID`` when the
envelope was read that far: the handler wraps what fails after parsing in :class:`Replying`,
and :class:`~.errors.InvalidRequest` carries the headers itself.

Each answer is recorded on the exchange (status, outcome) as
:func:`gateway.edge.middleware.problem_response` does for problem+json; an internal error is
logged with its traceback; the connection is closed after the answer when the request body
may not have been read to its end (an edge refusal that says so, an unreadable or oversized
package).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import ClassVar

from aiohttp import web

from gateway.errors import BodyTooLarge, GatewayError, InboundRefused, RateLimited
from gateway.exchange import Exchange, Outcome
from gateway.protocols.xca.envelope import build_failure, build_fault, new_message_id
from gateway.protocols.xca.errors import (
    EnvelopeTooLarge,
    FaultCode,
    InvalidRequest,
    MtomError,
    SoapFault,
)
from gateway.protocols.xca.model import Action, Addressing
from gateway.protocols.xca.mtom import MtomWriter, soap_content_type

__all__ = ["Replying", "UnsupportedMediaType", "soap_error"]

log = logging.getLogger("mado_gateway.xca")

_ACTIONS = {action.value: action for action in Action}

# Our own sentences for the refusals the edge makes before the handler (by HTTP status).
_REFUSAL_REASONS = {
    400: "The HTTP request was refused.",
    403: "This client is not allowed to call this endpoint.",
    404: "There is no SOAP endpoint at this path.",
    405: "This endpoint takes SOAP 1.2 requests by POST only.",
    413: "The request body is larger than this endpoint accepts.",
    414: "The request URL is longer than this endpoint accepts.",
    429: "Too many requests from this client; retry after the time in Retry-After.",
    431: "The request headers are larger or more numerous than this endpoint accepts.",
    505: "Send the request with HTTP/1.1.",
}
_RELAYED_HEADERS = ("Retry-After", "Allow")


class UnsupportedMediaType(SoapFault):
    """The body is neither plain SOAP 1.2 (``application/soap+xml``) nor an MTOM/XOP package
    (``multipart/related``): HTTP 415 (RFC 9110 §15.5.16) with a Sender Fault."""

    default_reason = "The request must be SOAP 1.2 (application/soap+xml) or MTOM/XOP."

    @property
    def http_status(self) -> int:
        return 415


class Replying(Exception):
    """``cause`` was raised while answering a request whose headers were read
    (``addressing``): its Fault relates to the request's MessageID."""

    def __init__(self, cause: Exception, addressing: Addressing) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.addressing = addressing


class _Refused(SoapFault):
    """An edge refusal or an upstream failure put as a Fault (its status chosen here)."""

    code: ClassVar[FaultCode] = "Sender"


class _Failed(SoapFault):
    code: ClassVar[FaultCode] = "Receiver"
    default_reason = "The gateway could not answer the request."


class _Internal(SoapFault):
    code: ClassVar[FaultCode] = "Receiver"
    default_reason = "internal error"


def soap_error(exc: BaseException, exchange: Exchange) -> web.StreamResponse:
    """The answer to ``exc`` on the XCA-I route, recorded on ``exchange`` (module docstring)."""
    relates_to = None
    if isinstance(exc, Replying):
        relates_to = exc.addressing.message_id
        exc = exc.cause
    if isinstance(exc, InvalidRequest):
        return _failure(exc, exchange)
    fault, status, headers = _fault_for(exc)
    exchange.status = status
    exchange.outcome = Outcome.FAILED if exchange.contacted else Outcome.REFUSED
    if isinstance(fault, _Internal):
        exchange.error = "internal"
        log.error("internal error", exc_info=exc)
    response = web.Response(
        status=status,
        body=build_fault(fault, relates_to=relates_to),
        headers={"Content-Type": soap_content_type()},
    )
    for name, value in headers:
        response.headers.add(name, value)
    if _body_may_be_unread(exc):
        response.force_close()
    return response


def _fault_for(exc: BaseException) -> tuple[SoapFault, int, list[tuple[str, str]]]:
    """The Fault for ``exc``, its HTTP status and the headers that go with it."""
    if isinstance(exc, SoapFault):
        return exc, exc.http_status, []
    headers: list[tuple[str, str]] = []
    if isinstance(exc, RateLimited):
        headers.append(("Retry-After", str(exc.retry_after_s)))
    if isinstance(exc, GatewayError | web.HTTPException):
        status = exc.status
        if isinstance(exc, web.HTTPException):
            headers += [(n, v) for n in _RELAYED_HEADERS for v in exc.headers.getall(n, ())]
        if status >= 500:
            return _Failed(_reason(status, _Failed.default_reason)), status, headers
        return _Refused(_reason(status, "The request was refused.")), status, headers
    return _Internal(), 500, headers


def _reason(status: int, fallback: str) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return f"{phrase}: {_REFUSAL_REASONS.get(status, fallback)}"


def _body_may_be_unread(exc: BaseException) -> bool:
    if isinstance(exc, InboundRefused):
        return exc.close_connection
    return isinstance(exc, MtomError | EnvelopeTooLarge | BodyTooLarge | UnsupportedMediaType)


def _failure(exc: InvalidRequest, exchange: Exchange) -> web.Response:
    """A Failure RetrieveDocumentSetResponse, as an MTOM package with its root part only
    (answers are MTOM, digest §9 item 1), relating to the request."""
    request = exc.addressing
    action = _ACTIONS.get(request.action) if request is not None else None
    if action is not None:
        exchange.transaction = action.transaction
    answer = Addressing(
        action=(action or Action.RAD_69).response,
        message_id=new_message_id(),
        relates_to=None if request is None else request.message_id,
    )
    writer = MtomWriter()
    envelope = build_failure(answer, exc.registry_error)
    exchange.status = 200
    exchange.outcome = Outcome.REFUSED
    exchange.error = "invalid-request"
    return web.Response(
        status=200,
        body=writer.root(envelope) + writer.closing(),
        headers={"Content-Type": writer.content_type()},
    )
