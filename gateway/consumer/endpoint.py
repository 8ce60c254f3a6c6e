"""``POST /mado/retrieve``: a manifest in, every instance it selects out, as one multipart answer.

Request: the manifest as the body — a DICOM KOS (``application/dicom``) or a FHIR Bundle
(``application/fhir+json``); the format is recognised from the bytes. Query parameters:

=====================  ===================================================================
``homeCommunityId``    community that holds the study (default: this gateway's own)
``selection``          ``study`` (default), ``series`` or ``key-images``
``series``             Series Instance UID, repeatable (with ``selection=series``)
``modality``           modality code, repeatable (with ``selection=series``)
=====================  ===================================================================

Transfer syntax: when the caller's ``Accept`` names a ``transfer-syntax`` (PS3.18 §8.7.3.5.2),
that Accept goes upstream unchanged; otherwise the gateway asks for
``multipart/related; type="application/dicom"; transfer-syntax=*`` — the objects as the
source stores them, never a copy the source transcoded because nobody asked (a MADO
retrieval returns what was published).

A series whose location identifier is not an OID (``ACME`` in the MADO FHIR sample) goes to
the Retrieve Location UID the configuration's ``location_aliases`` maps it to; unmapped, to its
Retrieve URL (``?retrieveurl=``, under the URL policy of the gateway that answers as
responding gateway); with neither, the answer is 422 ``unroutable-series`` naming the series
and the identifier (:mod:`gateway.consumer.urls`).

Each planned retrieval is routed exactly as a RAD-160 request for the same resource would be
(same grammar, same registry, same upstream policy), and the parts of every answer are
re-framed under one boundary as they arrive: ``multipart/related; type="application/dicom"``,
one part per instance, bytes unchanged. A planned retrieval whose route leads to a SOAP
upstream (a ``rad-75`` community, a ``rad-69`` source) is not a GET: it is one RAD-75/RAD-69
naming every instance the manifest lists for it, whose documents are re-framed into the same
answer (:mod:`gateway.consumer.bridged`); the TransferSyntaxUIDList is the caller's transfer
syntax, else every syntax ``server.xca.any_transfer_syntaxes`` lists. Every manifest read here
is also remembered (:mod:`gateway.manifestcache`), so that later study- and series-level
RAD-160 requests for its study can be bridged too.

Key images without key-image flags cost one more round: the Key Object series first, read in
memory, then the images its notes reference (MADO Appendix A). Manifests and notes are parsed
in bounded worker processes (:mod:`gateway.consumer.parsing`). Errors before the first byte
are problem documents (400 for a manifest or a selection that cannot be used, 422 for one too
complex to read or a series that cannot be addressed, those of the XCA-I bridge for a SOAP
upstream); after it, the connection is aborted.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
from aiohttp import web

from gateway.consumer.bridged import (
    KO_NOTES_LIMIT,
    Step,
    bridged,
    bridged_objects,
    rad160_of,
    start,
)
from gateway.consumer.fetch import dicom_accept
from gateway.consumer.reading import body_chunks
from gateway.consumer.urls import Target, instance_urls, urls_for
from gateway.edge.hardening import read_manifest
from gateway.errors import GatewayError, UpstreamStatus
from gateway.exchange import Exchange, Leg
from gateway.keys import EXCHANGE, MANIFEST_CACHE, MANIFEST_READER, RELAY, SPOOL
from gateway.protocols.xca.fromweb import abort, complete
from gateway.protocols.xca.reframe import multipart_type
from gateway.protocols.xca.results import PartFailed
from gateway.relay.dicomheader import read_identity
from gateway.relay.forward import open_upstream
from gateway.relay.multipart import (
    MultipartError,
    MultipartSplitter,
    PartBytes,
    PartEnd,
    PartStart,
    boundary_of,
    part_head,
)
from mado.errors import SelectionError
from mado.model import Manifest
from mado.plan import (
    Plan,
    RetrieveRequest,
    plan_from_notes,
    plan_key_images,
    plan_series,
    plan_study,
)
from routing.accept import outbound_accept, split_ranges
from routing.ids import HomeCommunityId
from routing.media import media_or_none
from routing.rad160 import ResourceKind
from routing.registry import Registry

__all__ = ["retrieve_manifest", "upstream_accept"]


def upstream_accept(incoming: str | None) -> str:
    """The Accept sent upstream: the caller's when it names a transfer syntax, else ``*``.

    The caller's goes through :func:`~routing.accept.outbound_accept` like a relayed one:
    ranges naming a syntax DICOMweb does not offer are dropped, and
    :class:`~routing.errors.UnsupportedTransferSyntax` (406) is raised when nothing else is left.
    """
    kept = outbound_accept([incoming] if incoming else [])
    if any(
        (media := media_or_none(r)) is not None and media.param("transfer-syntax") is not None
        for value in kept
        for r in split_ranges(value)
    ):
        return ", ".join(kept)
    return dicom_accept()


async def retrieve_manifest(request: web.Request) -> web.StreamResponse:
    exchange = request[EXCHANGE]
    exchange.route_kind = "manifest"
    exchange.resource = ResourceKind.INSTANCES.value
    registry = request[RELAY].registry  # the snapshot the relay uses too
    # Read up to server.limits.max_manifest_bytes, chunked or not; the bytes are parsed in a
    # bounded worker process, never here on the event loop.
    body = await read_manifest(request)
    manifest = await request.app[MANIFEST_READER].manifest(body, "the request body")
    hcid = HomeCommunityId(
        request.query.get("homeCommunityId") or registry.identity.home_community_id
    )
    exchange.home_community_id = hcid
    exchange.study_uid = manifest.study.uid
    aliases = registry.config.location_aliases
    # Its instance list, for later study- and series-level RAD-160s over XCA-I.
    request.app[MANIFEST_CACHE].remember(hcid, manifest, aliases=aliases)
    # "": paths below our own endpoint; opaque location identifiers map by configuration.
    target = Target(gateway="", home_community_id=hcid, locations=aliases)
    plan = await _plan(request, manifest, target, registry)
    steps = [Step(planned, urls_for(planned, target)) for planned in plan.requests]
    if not any(step.paths for step in steps):
        raise SelectionError("the selection names no instance")
    return await _stream(
        request, exchange, registry=registry, manifest=manifest, steps=steps, target=target
    )


async def _plan(
    request: web.Request, manifest: Manifest, target: Target, registry: Registry
) -> Plan:
    selection = request.query.get("selection", "study")
    if selection == "study":
        return plan_study(manifest)
    if selection == "series":
        return plan_series(
            manifest,
            series_uids=request.query.getall("series", []),
            modalities=request.query.getall("modality", []),
        )
    if selection != "key-images":
        raise SelectionError(
            f"selection must be study, series or key-images, not {selection[:20]!r}"
        )
    plan = plan_key_images(manifest)
    if plan.key_images_available:
        return plan
    objects: list[bytes] = []
    for planned in plan.key_object_series:
        paths = urls_for(planned, target)
        route = registry.resolve(rad160_of(paths[0])) if paths else None
        if route is not None and route.upstream.protocol.soap:
            step = Step(planned, paths)
            objects += await bridged_objects(request, manifest, step, route=route)
            continue
        for path in paths:
            objects += [part async for part in _parts(request, registry, path)]
    return plan_from_notes(manifest, await request.app[MANIFEST_READER].notes(objects))


async def _parts(
    request: web.Request, registry: Registry, path: str, *, limit: int = KO_NOTES_LIMIT
) -> AsyncIterator[bytes]:
    """Whole parts of one answer, in memory: only for the small Key Object series."""
    exchange = request[EXCHANGE]
    rad160 = rad160_of(path)
    route = registry.resolve(rad160)
    async with open_upstream(
        request,
        route,
        exchange,
        resource=rad160.kind,
        relay=request[RELAY],
        accept=dicom_accept(),
    ) as (_, answer):
        splitter = MultipartSplitter(boundary_of(answer.headers.get("Content-Type", "")))
        current = bytearray()
        total = 0
        async for chunk in body_chunks(answer.content, route.upstream.timeouts.read_idle_s):
            total += len(chunk)
            if total > limit:
                raise GatewayError("the Key Object series is larger than a series of notes can be")
            for event in splitter.feed(chunk):
                match event:
                    case PartStart():
                        current = bytearray()
                    case PartBytes(data):
                        current += data
                    case PartEnd():
                        yield bytes(current)
        splitter.close()


async def _stream(
    request: web.Request,
    exchange: Exchange,
    *,
    registry: Registry,
    manifest: Manifest,
    steps: Iterable[Step],
    target: Target,
) -> web.StreamResponse:
    boundary = uuid.uuid4().hex
    response = web.StreamResponse(status=200)
    response.content_type = "multipart/related"
    response.headers["Content-Type"] = multipart_type(boundary)
    accept = upstream_accept(request.headers.get("Accept"))
    relay = request[RELAY]
    try:
        with request.app[SPOOL].request() as budget:
            for step in steps:
                route = registry.resolve(rad160_of(step.paths[0])) if step.paths else None
                if route is not None and route.upstream.protocol.soap:
                    await bridged(
                        request,
                        response,
                        step,
                        boundary=boundary,
                        manifest=manifest,
                        route=route,
                        budget=budget,
                        accept=accept,
                    )
                    continue
                await _relayed_step(
                    request,
                    response,
                    step,
                    boundary=boundary,
                    registry=registry,
                    accept=accept,
                    fallback=lambda planned: instance_urls(planned, manifest, target),
                )
    except (
        GatewayError,
        MultipartError,
        PartFailed,  # a SOAP answer's part cut or missing
        OSError,  # the client left (ConnectionResetError), a spool file unreadable
        aiohttp.ClientError,  # the upstream's body was cut short
        TimeoutError,  # the upstream stopped sending (read_idle_s)
    ) as exc:
        if not response.prepared:
            raise
        abort(request, exchange, exc)
        return response
    await complete(response, exchange, relay.telemetry, boundary)
    return response


async def _relayed_step(
    request: web.Request,
    response: web.StreamResponse,
    step: Step,
    *,
    boundary: str,
    registry: Registry,
    accept: str,
    fallback: Callable[[RetrieveRequest], list[str]],
) -> None:
    """The paths of one planned retrieval over DICOMweb. A study or series its responding
    gateway answers 409 (``instance-list-required``: its community speaks XCA-I and it
    holds no instance list) is asked for instance by instance, as the manifest lists them
    (``fallback``)."""
    for path in step.paths:
        try:
            await _relayed(
                request, response, boundary=boundary, registry=registry, path=path, accept=accept
            )
        except UpstreamStatus as exc:
            if exc.upstream_status != 409 or step.planned.level == "instance":
                raise
            request[EXCHANGE].error = None  # answered after all
            for instance_path in fallback(step.planned):
                await _relayed(
                    request,
                    response,
                    boundary=boundary,
                    registry=registry,
                    path=instance_path,
                    accept=accept,
                )


async def _relayed(
    request: web.Request,
    response: web.StreamResponse,
    *,
    boundary: str,
    registry: Registry,
    path: str,
    accept: str,
) -> None:
    """One planned path over DICOMweb (RAD-160 or RAD-107): its parts under our boundary."""
    exchange = request[EXCHANGE]
    rad160 = rad160_of(path)
    route = registry.resolve(rad160)
    exchange.route_kind = "manifest"
    async with open_upstream(
        request, route, exchange, resource=rad160.kind, relay=request[RELAY], accept=accept
    ) as (_, answer):
        leg = exchange.legs[-1]
        await start(request, response, exchange, leg)
        await _reframe(
            body_chunks(answer.content, route.upstream.timeouts.read_idle_s),
            answer.headers.get("Content-Type", ""),
            response,
            boundary,
            exchange,
            leg=leg,
        )



async def _reframe(
    chunks: AsyncIterator[bytes],
    content_type: str,
    response: web.StreamResponse,
    boundary: str,
    exchange: Exchange,
    *,
    leg: Leg,
) -> None:
    """Copy each part of one answer under our boundary, noting its identity."""
    splitter = MultipartSplitter(boundary_of(content_type))
    head = bytearray()
    async for chunk in chunks:
        for event in splitter.feed(chunk):
            match event:
                case PartStart(headers):
                    part_type = headers.get("content-type", "application/dicom")
                    await response.write(part_head(boundary, {"Content-Type": part_type}))
                    head = bytearray()
                case PartBytes(data):
                    if len(head) < 16384:
                        head += data[: 16384 - len(head)]
                    await response.write(data)
                    exchange.bytes_sent += len(data)
                    leg.bytes += len(data)
                case PartEnd():
                    identity = read_identity(bytes(head))
                    if identity is not None:
                        exchange.note_instance(identity)
    splitter.close()
