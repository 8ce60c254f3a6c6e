"""Planned retrievals whose upstream speaks SOAP, for ``POST /mado/retrieve``: the manifest
lists the instances, so a study or a series goes out as one RAD-75 or RAD-69 naming each of
them (:mod:`gateway.protocols.xca.webrequest`), and the documents come back re-framed as
DICOMweb parts under the answer's boundary (:mod:`gateway.protocols.xca.reframe`) — the
same answer as for the planned paths relayed over DICOMweb.

A planned retrieval is a :class:`Step`: the plan's request and its paths below our endpoint
(routed as RAD-160 requests for the same resources would be, :func:`rad160_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from gateway.errors import GatewayError, UpstreamProtocol
from gateway.exchange import Exchange, Leg
from gateway.keys import EXCHANGE, RELAY, SETTINGS, SPOOL
from gateway.manifestcache import ListedInstance
from gateway.protocols.xca.fetching import Fetching
from gateway.protocols.xca.fromweb import group_for, send
from gateway.protocols.xca.reframe import write_documents
from gateway.protocols.xca.results import PartFailed
from gateway.protocols.xca.spool import SpoolBudget
from gateway.protocols.xca.webrequest import documents_for, transfer_syntaxes
from mado.model import Manifest
from mado.plan import RetrieveRequest
from routing.rad160 import Rad160Request, parse_rad160
from routing.registry import Route

__all__ = [
    "KO_NOTES_LIMIT",
    "Step",
    "bridged",
    "bridged_objects",
    "listed_instances",
    "rad160_of",
    "start",
]

KO_NOTES_LIMIT = 16 * 1024 * 1024
"""Bytes of Key Object documents read into memory for one key-image selection."""


@dataclass(frozen=True, slots=True)
class Step:
    """One planned retrieval and its paths below our endpoint (several when it names
    instances one by one)."""

    planned: RetrieveRequest
    paths: list[str]


async def start(
    request: web.Request, response: web.StreamResponse, exchange: Exchange, leg: Leg
) -> None:
    """Announce ``leg`` before its first byte; prepare the answer (200) on the first one."""
    request[RELAY].telemetry.answered(exchange, leg)
    if not response.prepared:
        await response.prepare(request)
        exchange.status = 200


def rad160_of(path: str) -> Rad160Request:
    """A planned path below our endpoint (with its ``?retrieveurl=``, if any) as RAD-160."""
    resource, _, query = path.partition("?")
    return parse_rad160(resource, query)


async def bridged_objects(
    request: web.Request,
    manifest: Manifest,
    step: Step,
    *,
    route: Route,
    limit: int = KO_NOTES_LIMIT,
) -> list[bytes]:
    """The Key Object series objects whose upstream speaks SOAP: one RAD-75/RAD-69
    for the instances the manifest lists, each returned document read whole (they are
    small; past ``limit`` bytes in all the retrieval is refused)."""
    rad160 = rad160_of(step.paths[0])
    settings = request.app[SETTINGS].xca
    documents = documents_for(
        rad160, listed_instances(manifest, step.planned, str(rad160.retrieve_location_uid))
    )
    if documents is None:
        return []
    objects: list[bytes] = []
    total = 0
    with request.app[SPOOL].request() as budget:
        fetching = _fetching(request, budget, tuple(settings.any_transfer_syntaxes))
        sent = await send(fetching, group_for(route.upstream, rad160, documents))
        try:
            if sent.failed:
                raise sent.failure()
            wanted = {d.content_id for d in sent.documents if d.content_id is not None}
            objects += [d.inline for d in sent.documents if d.inline is not None]
            async for part in sent.answer.parts:
                if part.content_id not in wanted:
                    await part.skip()
                    continue
                wanted.discard(part.content_id)
                current = bytearray()
                async for chunk in part.chunks:
                    total += len(chunk)
                    if total > limit:
                        raise GatewayError(
                            "the Key Object series is larger than a series of notes can be"
                        )
                    current += chunk
                objects.append(bytes(current))
            if wanted:
                raise PartFailed("unresolved")
        except PartFailed:
            raise UpstreamProtocol(
                route.upstream.name, "an answer whose documents did not all arrive"
            ) from None
        finally:
            await sent.answer.close()
    return objects



async def bridged(
    request: web.Request,
    response: web.StreamResponse,
    step: Step,
    *,
    boundary: str,
    manifest: Manifest,
    route: Route,
    budget: SpoolBudget,
    accept: str,
) -> None:
    """One planned retrieval whose upstream speaks SOAP: one RAD-75/RAD-69 naming every
    instance the manifest lists for it, its documents re-framed under our boundary
    (:mod:`gateway.protocols.xca.reframe`). A Failure before the answer started is a problem
    (:class:`~gateway.errors.BridgeFailed`); after it, it aborts the answer like any cut
    retrieval. A PartialSuccess gives what came, as a relayed 206 does."""
    exchange = request[EXCHANGE]
    rad160 = rad160_of(step.paths[0])
    settings = request.app[SETTINGS].xca
    listed = listed_instances(manifest, step.planned, str(rad160.retrieve_location_uid))
    documents = documents_for(rad160, listed)
    if documents is None:  # a series the manifest lists no instance of
        return
    fetching = _fetching(
        request, budget, _transfer_syntaxes(accept, settings.any_transfer_syntaxes)
    )
    sent = await send(fetching, group_for(route.upstream, rad160, documents))
    try:
        if sent.failed:
            raise sent.failure()
        await start(request, response, exchange, sent.leg)
        await write_documents(sent.documents, sent.answer.parts, response.write, boundary, exchange)
    finally:
        await sent.answer.close()


def listed_instances(
    manifest: Manifest, planned: RetrieveRequest, retrieve_location_uid: str
) -> list[ListedInstance]:
    """What the manifest lists for ``planned``: its instances, else its series' (every
    series', for a study-level plan), all at the Retrieve Location UID its path names."""
    instances = []
    for series in manifest.series:
        if planned.series_uid is not None and series.uid != planned.series_uid:
            continue
        for instance in series.instances:
            uid = instance.sop_instance_uid
            if not planned.instance_uids or uid in planned.instance_uids:
                instances.append(ListedInstance(str(series.uid), str(uid), retrieve_location_uid))
    return instances


def _transfer_syntaxes(accept: str, any_syntax: Sequence[str]) -> tuple[str, ...]:
    """The TransferSyntaxUIDList for the Accept the DICOMweb retrievals send (the caller's
    when it names a transfer syntax, else ``transfer-syntax=*``, which stands for every
    configured syntax: the objects as stored)."""
    return transfer_syntaxes([accept], any_syntax=any_syntax) or tuple(any_syntax)


def _fetching(
    request: web.Request, budget: SpoolBudget, transfer_syntaxes: tuple[str, ...]
) -> Fetching:
    """What one SOAP retrieval of this request needs (its relay, exchange, XCA-I settings)."""
    return Fetching(
        request=request,
        relay=request[RELAY],
        exchange=request[EXCHANGE],
        settings=request.app[SETTINGS].xca,
        budget=budget,
        transfer_syntaxes=transfer_syntaxes,
    )
