"""The bridge XCA-I in → DICOMweb out: a group's documents fetched one WADO-RS instance GET
each and held in the spool until the answer's envelope can be written (digest §6.4 path 2,
option E; §8.2, §8.3; items 9-11, 35-37).

Per group, :func:`fetch`:

* builds the Accept header from the request's TransferSyntaxUIDList
  (:func:`.outcomes.accept_for`: q-ordered, without Implicit VR Little Endian and Explicit VR
  Big Endian); when nothing is left, every document is an XDSRepositoryError (transfer
  syntax) and nothing is sent. A source should answer in the best syntax it can make, but
  some take one range and fail when they cannot encode it (406; Orthanc 500 or 400): after
  such a failure the GET is repeated without the syntax of the request's that came first —
  at most one GET per acceptable syntax, one in the ordinary case (NIST rig_5423: two
  syntaxes asked, the second one available);
* sends one GET per document — ``{base}studies/{st}/series/{se}/instances/{sop}`` to an
  Imaging Document Source (RAD-107), or
  ``{base}homeCommunityId/{hcid}/RetrieveLocationUID/{repository}/studies/…/instances/{sop}``
  to another community's XC-WADO responding gateway (RAD-160) — through
  :func:`gateway.relay.forward.open_upstream` (failover, redirects, address policy, TLS,
  auth), at most ``concurrency`` at once, every request recorded on one leg of the group.
  Ids that are not UIDs (or OIDs) never reach a URL: the document is refused as unknown;
* spools the single DICOM part of each answer into one spool file (:mod:`.bridgebody`),
  reading its File Meta Transfer Syntax UID (0002,0010) from the first bytes: a syntax that
  is not in the request's list is an XDSRepositoryError (transfer syntax), nothing
  substituted (item 10);
* maps every other outcome with :func:`.outcomes.wado_error` (404/410 → XDSDocumentUniqueIdError,
  406 → transfer syntax, 5xx and timeouts → XDSRepositoryError…): no HTTP status and no
  upstream text reaches the SOAP client (item 36);
* on :class:`~.spool.SpoolFull`, reports that document and every one not yet asked for as
  XDSRepositoryOutOfResources — the consumer asks again for those (item 37); a spool file
  that cannot be made or written (disk, descriptors) counts as a full spool. Memory never
  holds a document: only one read buffer and a 16 KiB header prefix per GET. Each spooled
  document holds one open (unlinked) file until the answer is written: a request of N
  documents needs N descriptors under the process's limit.

Returns once every document is spooled or failed. The :class:`~.results.GroupAnswer`'s parts
serve the spool files in request order, each discarded once read whole; its ``close``
discards the rest. Cancellation (the client
left) cancels the GETs, whose connections are released, and discards what was spooled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator, Sequence

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
from gateway.exchange import Exchange, Leg, StreamEnd
from gateway.protocols.xca.bridgebody import (
    InstanceBody,
    MultipartBody,
    Spooling,
    WholeBody,
    WrongInstance,
)
from gateway.protocols.xca.fetching import Fetching
from gateway.protocols.xca.model import (
    DocumentRequest,
    DocumentResponse,
    ErrorCode,
    RegistryError,
    bare_oid,
)
from gateway.protocols.xca.outcomes import (
    TRANSFER_SYNTAX_CONTEXT,
    accept_for,
    document_error,
    wado_error,
)
from gateway.protocols.xca.plan import Carrier, Group
from gateway.protocols.xca.results import GroupAnswer, Part, PartFailed
from gateway.protocols.xca.spool import SpoolBudget, SpoolFile, SpoolFull
from gateway.relay.bodyend import IdleWatchdog
from gateway.relay.forward import open_upstream
from gateway.relay.handover import Relay
from gateway.relay.multipart import MultipartError
from gateway.relay.multipart import boundary_of as multipart_boundary
from routing.errors import InvalidIdentifier, RoutingError
from routing.ids import Oid, Uid
from routing.media import media_or_none
from routing.rad160 import ResourceKind
from routing.registry import Route, RouteKind

__all__ = ["fetch"]

log = logging.getLogger("mado_gateway.xca")

_DICOM = "application/dicom"
_SYNTAX_FAILURES = frozenset({400, 406, 500, 501})
"""What a source may answer when it cannot encode the syntax it picked (Orthanc: 500 for a
transcoding it cannot do, 400 for a syntax it does not know)."""
_OUT_OF_RESOURCES = (
    "the gateway's spool for this request is full; ask for this document again in a later request"
)


class _Unusable(Exception):
    """One document's answer cannot be returned: ``error`` says why, in our own words;
    ``status`` is the source's HTTP status when it answered with an error."""

    def __init__(
        self, error: RegistryError, end: StreamEnd | None = None, *, status: int | None = None
    ) -> None:
        super().__init__(error.context)
        self.error = error
        self.end = end
        self.status = status


async def fetch(fetching: Fetching, group: Group) -> GroupAnswer:
    """Fetch ``group``'s documents from its ``wado-rs`` or ``xc-wado`` upstream into
    ``fetching.budget`` (module docstring). Never raises for an upstream's failure or a full
    spool; errors are located at ``fetching.own``."""
    request, relay, exchange = fetching.request, fetching.relay, fetching.exchange
    settings, budget, own = fetching.settings, fetching.budget, fetching.own
    transfer_syntaxes = fetching.transfer_syntaxes
    if group.carrier not in (Carrier.WADO_RS, Carrier.XC_WADO):
        raise ValueError(f"the bridge does not carry {group.carrier}")
    location = own.urn
    syntaxes = tuple(
        dict.fromkeys(bare_oid(s) for s in transfer_syntaxes if accept_for([s]) is not None)
    )
    if not syntaxes:
        errors = tuple(
            document_error(ErrorCode.REPOSITORY, d, TRANSFER_SYNTAX_CONTEXT, location=location)
            for d in group.documents
        )
        return GroupAnswer(upstream=group.upstream.name, errors=errors)
    fetcher = _Fetcher(
        request,
        relay,
        exchange,
        group,
        syntaxes=syntaxes,
        budget=budget,
        location=location,
    )
    try:
        await fetcher.run(settings.concurrency)
    except BaseException:
        fetcher.discard()
        raise
    return fetcher.answer()


class _Fetcher:
    """The GETs of one group, and what each gave (a spool file or an error)."""

    def __init__(
        self,
        request: web.Request,
        relay: Relay,
        exchange: Exchange,
        group: Group,
        *,
        syntaxes: tuple[str, ...],
        budget: SpoolBudget,
        location: str,
    ) -> None:
        self._request = request
        self._relay = relay
        self._exchange = exchange
        self._group = group
        self._syntaxes = syntaxes
        self._wanted = set(syntaxes)
        self._budget = budget
        self._location = location
        upstream = group.upstream
        kind = RouteKind.SOURCE if group.carrier is Carrier.WADO_RS else RouteKind.RELAY
        self._route = Route(
            kind=kind, upstream=upstream, base_urls=upstream.base_urls, path="", query=""
        )
        self._idle_s = upstream.timeouts.read_idle_s
        self._leg: Leg | None = None
        self._files: dict[int, SpoolFile] = {}
        self._errors: dict[int, RegistryError] = {}
        self._full = False
        self._end = StreamEnd.COMPLETE

    async def run(self, concurrency: int) -> None:
        documents = self._group.documents
        queue: Iterator[tuple[int, DocumentRequest]] = iter(enumerate(documents))
        async with asyncio.TaskGroup() as workers:  # one failing cancels the others
            for _ in range(max(1, min(concurrency, len(documents)))):
                workers.create_task(self._worker(queue))
        leg = self._leg
        if leg is not None:
            leg.end, leg.end_s = self._end, self._exchange.elapsed()
            if self._files:
                leg.status = 200  # what the documents returned were answered with

    async def _worker(self, queue: Iterator[tuple[int, DocumentRequest]]) -> None:
        # One shared iterator: what is left in it when the spool fills is "not yet fetched".
        for index, document in queue:
            if self._full:
                self._errors[index] = self._error(ErrorCode.OUT_OF_RESOURCES, document)
                continue
            try:
                self._files[index] = await self._one(document)
            except _Unusable as exc:
                self._errors[index] = exc.error
                if exc.end is not None:
                    self._end = exc.end
            except (SpoolFull, OSError) as exc:  # OSError: the spool's disk or descriptors
                if not isinstance(exc, SpoolFull):
                    log.warning("spool file failed", extra={"error": type(exc).__name__})
                self._full = True
                self._errors[index] = self._error(ErrorCode.OUT_OF_RESOURCES, document)

    def _error(
        self, code: str, document: DocumentRequest, context: str = _OUT_OF_RESOURCES
    ) -> RegistryError:
        return document_error(code, document, context, location=self._location)

    def _path(self, document: DocumentRequest) -> str:
        """The instance's path below the upstream's base URL (ids validated first)."""
        try:
            study = Uid(document.study_uid)
            series = Uid(document.series_uid)
            sop = Uid(document.document_uid)
            repository = Oid(bare_oid(document.repository_id))
        except InvalidIdentifier:
            context = "its study, series or document id is not a DICOM UID"
            raise _Unusable(self._error(ErrorCode.DOCUMENT_UNIQUE_ID, document, context)) from None
        tail = f"studies/{study}/series/{series}/instances/{sop}"
        if self._group.carrier is Carrier.WADO_RS:
            return tail
        community = self._group.home_community_id
        return f"homeCommunityId/{community}/RetrieveLocationUID/{repository}/{tail}"

    def _leg_of_group(self) -> Leg:
        if self._leg is None:
            self._leg = self._exchange.open_leg(self._group.upstream.name)
            self._leg.transaction = self._group.carrier.transaction
        return self._leg

    async def _one(self, document: DocumentRequest) -> SpoolFile:
        """The document, spooled; asked again without the syntax it was asked first when
        the source failed in a way that may mean it cannot encode it (module docstring)."""
        path = self._path(document)
        syntaxes = self._syntaxes
        while True:
            try:
                return await self._get(document, path, syntaxes)
            except _Unusable as exc:
                if exc.status not in _SYNTAX_FAILURES or len(syntaxes) < 2:
                    raise
                syntaxes = syntaxes[1:]

    async def _get(
        self, document: DocumentRequest, path: str, syntaxes: Sequence[str]
    ) -> SpoolFile:
        accept = accept_for(syntaxes)
        assert accept is not None  # every syntax kept is one DICOMweb may be asked for
        route = dataclasses.replace(self._route, path=path)
        try:
            async with open_upstream(
                self._request,
                route,
                self._exchange,
                resource=ResourceKind.INSTANCES,
                relay=self._relay,
                accept=accept,
                leg=self._leg_of_group(),
            ) as (_, answer):
                return await self._spooled(answer, document)
        except GatewayError as exc:
            status, failure = _status_of(exc)
        except RoutingError:  # the consumer's own headers made the GET impossible
            status, failure = None, "request refused"
        error = wado_error(status, failure, document, location=self._location)
        raise _Unusable(error, status=status)

    async def _spooled(
        self, answer: aiohttp.ClientResponse, document: DocumentRequest
    ) -> SpoolFile:
        if answer.status != 200:  # a 206 or 204 holds no whole instance
            error = wado_error(answer.status, None, document, location=self._location)
            raise _Unusable(error, status=answer.status)
        content_type = answer.headers.get("Content-Type", "")
        media = media_or_none(content_type)
        if media is not None and media.type == "multipart":
            reader: InstanceBody = MultipartBody(multipart_boundary(content_type))
        elif media is None or media.essence == _DICOM:
            reader = WholeBody()
        else:
            raise _Unusable(self._not_dicom(document))
        spooled = Spooling(self._budget, self._wanted)
        watch = IdleWatchdog(answer.content, self._idle_s)
        try:
            while chunk := await answer.content.readany():
                for data in reader.feed(chunk):
                    spooled.write(data)
                watch.since = watch.clock()
            reader.close()
            return spooled.finish()
        except WrongInstance as exc:
            spooled.discard()
            raise _Unusable(self._wrong(exc, document)) from None
        except (aiohttp.ClientError, TimeoutError, MultipartError) as exc:
            spooled.discard()
            end = StreamEnd.STALLED if isinstance(exc, TimeoutError) else StreamEnd.TRUNCATED
            context = f"the source's answer was cut off ({end.value})"
            raise _Unusable(self._error(ErrorCode.REPOSITORY, document, context), end) from None
        except BaseException:
            spooled.discard()
            raise
        finally:
            watch.cancel()
            if self._leg is not None:
                self._leg.bytes += spooled.received

    def _not_dicom(self, document: DocumentRequest) -> RegistryError:
        context = "the source answered something other than one DICOM instance"
        return self._error(ErrorCode.REPOSITORY, document, context)

    def _wrong(self, exc: WrongInstance, document: DocumentRequest) -> RegistryError:
        if exc.syntax:
            return self._error(ErrorCode.REPOSITORY, document, TRANSFER_SYNTAX_CONTEXT)
        return self._not_dicom(document)

    def answer(self) -> GroupAnswer:
        """The group's answer: documents and parts in request order, errors likewise."""
        documents: list[DocumentResponse] = []
        served: list[tuple[str, SpoolFile]] = []
        for index, document in enumerate(self._group.documents):
            spooled = self._files.get(index)
            if spooled is None:
                continue
            content_id = f"bridged.{index}"
            served.append((content_id, spooled))
            documents.append(
                DocumentResponse(
                    home_community_id=document.home_community_id
                    or self._group.home_community_id.urn,
                    repository_id=document.repository_id,
                    document_uid=document.document_uid,
                    content_id=content_id,
                )
            )
        errors = tuple(self._errors[index] for index in sorted(self._errors))
        files = [spooled for _, spooled in served]

        async def close() -> None:
            for spooled in files:
                spooled.discard()

        return GroupAnswer(
            upstream=self._group.upstream.name,
            documents=tuple(documents),
            errors=errors,
            parts=_parts(served),
            close=close,
        )

    def discard(self) -> None:
        for spooled in self._files.values():
            spooled.discard()


def _status_of(exc: GatewayError) -> tuple[int | None, str | None]:
    """The upstream's status, or our short reason when there was none (never its text)."""
    match exc:
        case UpstreamStatus() | RedirectNotFollowed():
            return exc.upstream_status, None
        case UpstreamTimeout():
            return None, "timeout"
        case UpstreamUnavailable():
            return None, exc.reason
        case AddressRefused():
            return None, "address refused"
        case _:
            return None, "unusable answer"


async def _parts(served: Sequence[tuple[str, SpoolFile]]) -> AsyncIterator[Part]:
    for content_id, spooled in served:
        yield Part(content_id=content_id, chunks=_chunks(spooled))


async def _chunks(spooled: SpoolFile) -> AsyncIterator[bytes]:
    try:
        for block in spooled.chunks():
            yield block
    except (OSError, ValueError) as exc:  # discarded while read, or the disk failed
        raise PartFailed("spool") from exc
    spooled.discard()  # read once: its bytes and descriptor go back at once
