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
one part per instance, bytes unchanged. Key images without key-image flags cost one more round:
the Key Object series first, read in memory, then the images its notes reference (MADO
Appendix A). Manifests and notes are parsed in bounded worker processes
(:mod:`gateway.consumer.parsing`). Errors before the first byte are problem documents (400
for a manifest or a selection that cannot be used, 422 for one too complex to read or a
series that cannot be addressed); after it, the connection is aborted.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable

import aiohttp
from aiohttp import web

from gateway.consumer.fetch import dicom_accept
from gateway.consumer.reading import body_chunks
from gateway.consumer.urls import Target, urls_for
from gateway.edge.hardening import read_manifest
from gateway.errors import GatewayError
from gateway.exchange import Exchange, Leg, Outcome
from gateway.keys import EXCHANGE, MANIFEST_READER, RELAY
from gateway.relay.dicomheader import read_identity
from gateway.relay.forward import open_upstream
from gateway.relay.multipart import (
    MultipartError,
    MultipartSplitter,
    PartBytes,
    PartEnd,
    PartStart,
    boundary_of,
    closing,
    part_head,
)
from mado.errors import SelectionError
from mado.model import Manifest
from mado.plan import Plan, plan_from_notes, plan_key_images, plan_series, plan_study
from routing.accept import outbound_accept, split_ranges
from routing.ids import HomeCommunityId
from routing.media import MediaType, media_or_none
from routing.rad160 import Rad160Request, ResourceKind, parse_rad160
from routing.registry import Registry

__all__ = ["retrieve_manifest", "upstream_accept"]

_KO_NOTES_LIMIT = 16 * 1024 * 1024


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
    # "": paths below our own endpoint; opaque location identifiers map by configuration.
    target = Target(gateway="", home_community_id=hcid, locations=registry.config.location_aliases)
    plan = await _plan(request, manifest, target, registry)
    paths = [url for planned in plan.requests for url in urls_for(planned, target)]
    if not paths:
        raise SelectionError("the selection names no instance")
    return await _stream(request, exchange, registry, paths)


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
    objects = [
        part
        for path in (u for planned in plan.key_object_series for u in urls_for(planned, target))
        async for part in _parts(request, registry, path, limit=_KO_NOTES_LIMIT)
    ]
    return plan_from_notes(manifest, await request.app[MANIFEST_READER].notes(objects))


def _rad160(path: str) -> Rad160Request:
    """A planned path below our endpoint (with its ``?retrieveurl=``, if any) as RAD-160."""
    resource, _, query = path.partition("?")
    return parse_rad160(resource, query)


async def _parts(
    request: web.Request, registry: Registry, path: str, *, limit: int
) -> AsyncIterator[bytes]:
    """Whole parts of one answer, in memory: only for the small Key Object series."""
    exchange = request[EXCHANGE]
    rad160 = _rad160(path)
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
    request: web.Request, exchange: Exchange, registry: Registry, paths: Iterable[str]
) -> web.StreamResponse:
    boundary = uuid.uuid4().hex
    response = web.StreamResponse(status=200)
    response.content_type = "multipart/related"
    parameters = (("type", "application/dicom"), ("boundary", boundary))
    response.headers["Content-Type"] = str(
        MediaType(type="multipart", subtype="related", parameters=parameters)
    )
    accept = upstream_accept(request.headers.get("Accept"))
    relay = request[RELAY]
    try:
        for path in paths:
            rad160 = _rad160(path)
            route = registry.resolve(rad160)
            exchange.route_kind = "manifest"
            async with open_upstream(
                request, route, exchange, resource=rad160.kind, relay=relay, accept=accept
            ) as (_, answer):
                leg = exchange.legs[-1]
                relay.telemetry.answered(exchange, leg)  # before this leg's first byte
                if not response.prepared:
                    await response.prepare(request)
                    exchange.status = 200
                await _reframe(
                    body_chunks(answer.content, route.upstream.timeouts.read_idle_s),
                    answer.headers.get("Content-Type", ""),
                    response,
                    boundary,
                    exchange,
                    leg=leg,
                )
    except (
        GatewayError,
        MultipartError,
        ConnectionResetError,  # the client left
        aiohttp.ClientError,  # the upstream's body was cut short
        TimeoutError,  # the upstream stopped sending (read_idle_s)
    ) as exc:
        if not response.prepared:
            raise
        exchange.outcome = Outcome.ABORTED
        exchange.error = (
            "client"
            if isinstance(exc, ConnectionResetError)
            else "stalled"
            if isinstance(exc, TimeoutError)
            else "truncated"
        )
        if request.transport is not None:
            request.transport.abort()
        return response
    # Complete: record it before the closing delimiter lets the client see the end.
    exchange.outcome = Outcome.COMPLETE
    relay.telemetry.seal(exchange)
    with contextlib.suppress(ConnectionResetError):  # the client left before the end
        await response.write(closing(boundary))
        await response.write_eof()
    return response


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
