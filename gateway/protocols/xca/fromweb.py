"""RAD-160 in, RAD-75 or RAD-69 out: the bridge from DICOMweb consumers to communities and
sources that speak only XCA-I (xcai-digest.md §6.4 item 3, §8.1, §8.3; checklist 30-34).

Entry point: :func:`bridge`, which the RAD-160 handler (:mod:`gateway.protocols.xcwado.handler`)
calls for a route whose upstream speaks SOAP — a ``rad-75`` community at an initiating
gateway, a ``rad-69`` source at a responding one. In order:

1. What RAD-69/RAD-75 cannot carry is refused before any upstream is asked
   (:class:`~gateway.errors.BridgeRefused`): another resource than instances (501), an Accept
   with no DICOM instance range (406), a study or series whose instances no manifest this
   gateway holds lists (409 ``instance-list-required``; :mod:`gateway.manifestcache`).
2. One group, one SOAP call (:func:`gateway.protocols.xca.client.call`): the DocumentRequests
   of :mod:`.webrequest`, the TransferSyntaxUIDList from the Accept in q order.
3. The answer's envelope arrives before its documents, so the HTTP status is chosen before
   the first body byte (:func:`~.outcomes.http_answer`): Success 200, PartialSuccess 206 with
   a ``Warning``; Failure is a problem (:class:`~gateway.errors.BridgeFailed`: 404, 406 when
   every error is a transfer-syntax error, 502 when the community is unavailable).
4. Each returned document is one DICOMweb part under one boundary
   (``multipart/related; type="application/dicom"``), headed ``Content-Type:
   application/dicom; transfer-syntax=<File Meta (0002,0010)>`` read from its first bytes,
   its bytes unchanged (:mod:`.reframe`).

Streaming and failure: the leg is announced (``telemetry.answered``) before the first byte;
the exchange is sealed before the closing delimiter; any failure after the first byte — a
part cut or missing (:class:`~.results.PartFailed`), the client gone, a stall — aborts the
connection, never a well-formed truncated answer. The group's answer is always closed, so its
upstream connection and spool files are released, also on cancellation.

Records: the SOAP leg is recorded by the client (its transaction RAD-75 or RAD-69); the
exchange stays a RAD-160 one; every requested document gets a
:class:`~gateway.exchange.DocumentOutcome`, from which the audit trail writes the 110103 of
the SOAP leg (:mod:`gateway.audit.retrieves`).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from gateway.errors import (
    BridgeFailed,
    InstanceListRequired,
    NoInstanceAccepted,
    ResourceNotBridgeable,
)
from gateway.exchange import Exchange, Leg, Outcome, Telemetry
from gateway.manifestcache import ManifestCache
from gateway.protocols.xca import client
from gateway.protocols.xca.consolidate import outcome_of
from gateway.protocols.xca.fetching import Fetching
from gateway.protocols.xca.model import (
    DocumentRequest,
    DocumentResponse,
    ErrorCode,
    RegistryError,
    RetrieveResponse,
    Status,
)
from gateway.protocols.xca.outcomes import http_answer, status_for
from gateway.protocols.xca.plan import Carrier, Group
from gateway.protocols.xca.reframe import multipart_type, write_documents
from gateway.protocols.xca.results import GroupAnswer, PartFailed
from gateway.protocols.xca.spool import Spool
from gateway.protocols.xca.webrequest import (
    NOT_BRIDGEABLE,
    documents_for,
    error_summary,
    transfer_syntaxes,
)
from gateway.relay.handover import Relay
from gateway.relay.multipart import closing
from gateway.settings import XcaSettings
from routing.rad160 import Rad160Request
from routing.registry import Route
from routing.upstream import Protocol as UpstreamProtocol
from routing.upstream import Upstream

__all__ = ["Sent", "abort", "bridge", "carrier_for", "complete", "group_for", "send"]

log = logging.getLogger("mado_gateway.bridge")

_CARRIERS = {UpstreamProtocol.RAD_75: Carrier.RAD_75, UpstreamProtocol.RAD_69: Carrier.RAD_69}


async def bridge(
    request: web.Request,
    route: Route,
    rad160: Rad160Request,
    exchange: Exchange,
    *,
    relay: Relay,
    settings: XcaSettings,
    spool: Spool,
    cache: ManifestCache,
) -> web.StreamResponse:
    """Answer ``rad160``, routed to the SOAP upstream of ``route``, through one RAD-75 or
    RAD-69 (see the module docstring). Raises a :class:`~gateway.errors.BridgeRefused` or
    :class:`~gateway.errors.BridgeFailed` (or a routing error for the Accept) before the
    first byte; after it, failures abort the connection and the response is returned."""
    upstream = route.upstream
    if rad160.kind in NOT_BRIDGEABLE:
        raise ResourceNotBridgeable(rad160.kind.value, upstream.name)
    syntaxes = transfer_syntaxes(
        request.headers.getall("Accept", ()), any_syntax=settings.any_transfer_syntaxes
    )
    if not syntaxes:
        raise NoInstanceAccepted(upstream.name)
    listed = None
    if rad160.instance is None:
        listed = cache.instances(
            str(rad160.home_community_id),
            str(rad160.study),
            retrieve_location_uid=str(rad160.retrieve_location_uid),
            series_uid=None if rad160.series is None else str(rad160.series),
        )
    documents = documents_for(rad160, listed)
    if documents is None:
        raise InstanceListRequired(rad160.level, upstream.name)
    group = group_for(upstream, rad160, documents)
    with spool.request() as budget:
        fetching = Fetching(
            request=request,
            relay=relay,
            exchange=exchange,
            settings=settings,
            budget=budget,
            transfer_syntaxes=syntaxes,
        )
        sent = await send(fetching, group)
        try:
            return await _answer(request, exchange, sent, relay=relay)
        finally:
            await sent.answer.close()


def carrier_for(upstream: Upstream) -> Carrier:
    """RAD-75 for a ``rad-75`` community, RAD-69 for a ``rad-69`` source. Raises
    ``ValueError`` for an upstream that does not speak SOAP (the caller relays those)."""
    carrier = _CARRIERS.get(upstream.protocol)
    if carrier is None:
        raise ValueError(f"upstream {upstream.name} does not speak RAD-69/RAD-75")
    return carrier


def group_for(
    upstream: Upstream, rad160: Rad160Request, documents: tuple[DocumentRequest, ...]
) -> Group:
    """The one group a bridged RAD-160 sends: to ``upstream``, of the path's community (for
    a RAD-69 source the registry routed the path's hcid as ours)."""
    return Group(
        upstream=upstream,
        carrier=carrier_for(upstream),
        home_community_id=rad160.home_community_id,
        documents=documents,
    )


@dataclass(slots=True, kw_only=True)
class Sent:
    """One group's SOAP answer, matched against what was asked.

    ``documents`` are the returned DocumentResponses that answer a requested document
    (others are ignored, and so are their parts); ``status`` the RegistryResponse status of
    the answer as this gateway judges it (:func:`~.outcomes.status_for`); ``leg`` the leg
    the client recorded (what the first byte is announced on).
    """

    group: Group
    answer: GroupAnswer
    leg: Leg
    documents: tuple[DocumentResponse, ...]
    status: Status

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILURE

    def http(self) -> tuple[int, str | None]:
        """The HTTP status and Warning of the bridged answer (checklist 33)."""
        response = RetrieveResponse(
            status=self.status, errors=self.answer.errors, documents=self.documents
        )
        return http_answer(response)

    def failure(self) -> BridgeFailed:
        """The problem for a Failure (:meth:`http` is then 404, 406 or 502)."""
        status, _ = self.http()
        return BridgeFailed(self.group.upstream.name, status, error_summary(self.answer.errors))


async def send(fetching: Fetching, group: Group) -> Sent:
    """Send ``group`` with :func:`~gateway.protocols.xca.client.call` and match its answer;
    records a :class:`~gateway.exchange.DocumentOutcome` per requested document. The caller
    closes ``Sent.answer``. Raises only what the client raises (it reports an upstream
    failure as errors, not as an exception)."""
    exchange = fetching.exchange
    answer = await client.call(fetching, group, responding=False)
    try:
        requested = {document.key for document in group.documents}
        documents = tuple(d for d in answer.documents if d.key in requested)
        status = status_for(len(group.documents), len(documents), answer.errors)
        _record(exchange, group, documents, answer.errors)
        return Sent(
            group=group,
            answer=answer,
            leg=_leg_of(exchange, group.upstream.name),
            documents=documents,
            status=status,
        )
    except BaseException:
        await answer.close()
        raise


async def _answer(
    request: web.Request, exchange: Exchange, sent: Sent, *, relay: Relay
) -> web.StreamResponse:
    status, warning = sent.http()
    if sent.failed:
        raise sent.failure()
    boundary = uuid.uuid4().hex
    response = web.StreamResponse(status=status)
    response.headers["Content-Type"] = multipart_type(boundary)
    if warning is not None:
        response.headers["Warning"] = warning
    response.enable_chunked_encoding()  # only the last chunk says "complete"
    relay.telemetry.answered(exchange, sent.leg)  # before the first byte
    await response.prepare(request)
    exchange.status = status
    try:
        await write_documents(
            sent.documents, sent.answer.parts, response.write, boundary, exchange
        )
    except (PartFailed, OSError, aiohttp.ClientError, TimeoutError) as exc:
        abort(request, exchange, exc)
        return response
    except Exception as exc:  # after the first byte nothing else can be said: cut
        log.exception("bridged answer failed after its first byte")
        abort(request, exchange, exc)
        return response
    await complete(response, exchange, relay.telemetry, boundary)
    return response


async def complete(
    response: web.StreamResponse, exchange: Exchange, telemetry: Telemetry, boundary: str
) -> None:
    """End a whole multipart answer: the exchange is sealed (the audit journal included)
    before the closing delimiter lets the client see that it is complete (design.md §4)."""
    exchange.outcome = Outcome.COMPLETE
    telemetry.seal(exchange)
    with contextlib.suppress(ConnectionResetError):  # the client left before the end
        await response.write(closing(boundary))
        await response.write_eof()


def abort(request: web.Request, exchange: Exchange, exc: BaseException) -> None:
    """End a started answer without its closing delimiter (design.md §4): the exchange is
    ``aborted`` with a bounded reason, the connection cut."""
    exchange.outcome = Outcome.ABORTED
    if isinstance(exc, ConnectionResetError):
        exchange.error = "client"
    elif isinstance(exc, TimeoutError) or getattr(exc, "reason", None) == "stalled":
        exchange.error = "stalled"
    else:
        exchange.error = "truncated"
    log.log(
        logging.INFO if exchange.error == "client" else logging.WARNING,
        "answer aborted after its first byte",
        extra={"reason": exchange.error, "bytes": exchange.bytes_sent},
    )
    if request.transport is not None:
        request.transport.abort()


def _leg_of(exchange: Exchange, upstream: str) -> Leg:
    """The latest leg to ``upstream`` (the client opened it); a new one if it opened none."""
    for leg in reversed(exchange.legs):
        if leg.upstream == upstream:
            return leg
    return exchange.open_leg(upstream)


def _record(
    exchange: Exchange,
    group: Group,
    returned: Sequence[DocumentResponse],
    errors: Sequence[RegistryError],
) -> None:
    """One DocumentOutcome per requested document: returned, or the code of the error that
    names it (its SOP Instance UID in the context), else of the answer's first error."""
    keys = {document.key for document in returned}
    fallback = errors[0].code if errors else ErrorCode.REPOSITORY.value
    for document in group.documents:
        code = None
        if document.key not in keys:
            code = next(
                (e.code for e in errors if document.document_uid in e.context), fallback
            )
        exchange.documents.append(
            outcome_of(document, error_code=code, upstream=group.upstream.name)
        )
