"""The XCA-I SOAP endpoint: ``POST {server.xca.path}``, RAD-69 and RAD-75 (digest §2.1,
§2.2; items 1, 2, 5).

One request, in order:

1. the body is read, never past :func:`body_limit` (``xca.max_envelope_bytes`` and
   :data:`FRAMING_ROOM`; 413 past it): ``multipart/related`` is an MTOM/XOP package whose
   root part is the envelope (:class:`~.mtom.MtomReader`: root at most
   ``max_envelope_bytes``; framing, nesting and encodings checked; a RAD-69/RAD-75 request
   has no attachment, so any other part is refused at once); ``application/soap+xml`` is
   the envelope itself; anything else is :class:`~.faults.UnsupportedMediaType`;
2. :func:`.envelope.parse_request` reads it with entities, DTDs and network off and checks
   the WS-Addressing headers (only the anonymous reply address) and the content rules;
3. the request is dispatched on ``wsa:Action`` — never on the HTTP ``action`` parameter or
   ``SOAPAction`` — RAD-69 to the initiating role (:attr:`~.plan.Role.INITIATING`), RAD-75
   to the responding role; any other action was refused by step 2 (ActionNotSupported);
4. :func:`.respond.respond` answers it, handed the request's
   :class:`~gateway.relay.handover.Relay`, the XCA-I settings and the application's spool.

Every error goes to :func:`.faults.soap_error` (the route's error renderer); one raised
after step 2 is wrapped in :class:`~.faults.Replying` so the Fault relates to the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.errors import BodyTooLarge
from gateway.exchange import Exchange
from gateway.keys import EXCHANGE, RELAY, SETTINGS, SPOOL
from gateway.protocols.xca.envelope import parse_request
from gateway.protocols.xca.errors import MtomError
from gateway.protocols.xca.faults import Replying, UnsupportedMediaType
from gateway.protocols.xca.model import Action, RetrieveRequest, bare_oid
from gateway.protocols.xca.mtom import MtomReader, PartStart, RootPart, is_multipart, is_soap
from gateway.protocols.xca.plan import Role
from gateway.protocols.xca.respond import respond
from gateway.settings import XcaSettings
from routing.rad160 import ResourceKind

__all__ = ["FRAMING_ROOM", "body_limit", "read_envelope", "retrieve"]

FRAMING_ROOM = 64 * 1024
"""Body bytes allowed beyond the envelope: the MTOM delimiters and part headers."""

_ROLES = {Action.RAD_69.value: Role.INITIATING, Action.RAD_75.value: Role.RESPONDING}


def body_limit(settings: XcaSettings) -> int:
    """The most bytes a request body may have (the route's ``max_body_bytes``)."""
    return settings.max_envelope_bytes + FRAMING_ROOM


async def retrieve(request: web.Request) -> web.StreamResponse:
    """The handler of ``POST {server.xca.path}`` (module docstring)."""
    exchange = request[EXCHANGE]
    relay = request[RELAY]  # the pool, the registry and the telemetry, passed down explicitly
    settings = request.app[SETTINGS].xca
    exchange.route_kind = "xca"
    exchange.resource = ResourceKind.INSTANCES.value
    envelope = await read_envelope(request, settings)
    addressing, retrieve_request = parse_request(envelope, max_bytes=settings.max_envelope_bytes)
    role = _ROLES[addressing.action]  # parse_request admits these two actions only
    _describe(exchange, Action(addressing.action), role, retrieve_request)
    try:
        return await respond(
            request,
            relay,
            exchange,
            addressing,
            retrieve_request,
            role=role,
            settings=settings,
            spool=request.app[SPOOL],
        )
    except Exception as exc:
        raise Replying(exc, addressing) from exc


async def read_envelope(request: web.Request, settings: XcaSettings) -> bytes:
    """The request's SOAP envelope (module docstring, step 1). Raises
    :class:`~.errors.MtomError`, :class:`~.errors.EnvelopeTooLarge`,
    :class:`~.faults.UnsupportedMediaType` or :class:`~gateway.errors.BodyTooLarge`."""
    content_type = request.headers.get("Content-Type", "")
    chunks = _bounded(request.content, body_limit(settings))
    if is_multipart(content_type):
        reader = MtomReader(
            content_type, max_root_bytes=settings.max_envelope_bytes, max_parts=1
        )
        envelope: bytes | None = None
        async for chunk in chunks:
            for event in reader.feed(chunk):
                if isinstance(event, PartStart):
                    raise MtomError("A RAD-69/RAD-75 request carries no attachment.")
                if isinstance(event, RootPart):
                    envelope = event.envelope
        reader.close()
        assert envelope is not None  # close() raises without a root part
        return envelope
    if is_soap(content_type):
        body = bytearray()
        async for chunk in chunks:
            body += chunk
        return bytes(body)
    raise UnsupportedMediaType()


async def _bounded(content: aiohttp.StreamReader, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive; :class:`BodyTooLarge` past ``limit`` bytes (a
    chunked body is never read beyond it)."""
    received = 0
    while chunk := await content.readany():
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(limit)
        yield chunk


def _describe(exchange: Exchange, action: Action, role: Role, retrieve: RetrieveRequest) -> None:
    exchange.transaction = action.transaction
    exchange.route_kind = role.value
    communities = {bare_oid(d.home_community_id or "") for d in retrieve.documents}
    if len(communities) == 1 and "" not in communities:
        exchange.home_community_id = communities.pop()
    studies = {document.study_uid for document in retrieve.documents}
    if len(studies) == 1:
        exchange.study_uid = studies.pop()
