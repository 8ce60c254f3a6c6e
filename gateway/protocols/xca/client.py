"""The SOAP side of a group: one RAD-75 or RAD-69 to one upstream, its answer as a
:class:`~gateway.protocols.xca.results.GroupAnswer` whose parts stream live (digest §6.4 item
1: "SOAP relay", option B with the evidence supplied by the upstream's envelope).

:func:`call` — the request (digest §2.2, §2.4, §2.9; checklist items 16, 26, 29):

* ``wsa:Action`` (mustUnderstand), a fresh ``wsa:MessageID``, ``wsa:ReplyTo`` anonymous and
  ``wsa:To`` = the upstream's first endpoint URL (the same envelope goes to each failover
  URL: it is built once, before the first attempt);
* the group's DocumentRequests in the namespace the upstream is configured for, the
  consumer's TransferSyntaxUIDList unchanged; HomeCommunityId as the consumer wrote it on a
  RAD-75, our own (``urn:oid:``) on a RAD-69 — the documents are in our community, and a
  Responding Imaging Gateway's RAD-69 carries its own id (digest §2.9, NIST rig_5430);
* MTOM-packaged with the root part only (NIST refuses plain SOAP for RAD-69/75, §2.1),
  POSTed through :func:`gateway.relay.forward.open_upstream`: base-URL failover, TLS, the
  address and redirect policies and the upstream's credentials come from there, and every
  attempt is recorded on one leg whose ``transaction`` is RAD-75 or RAD-69.

The answer (digest §2.8, §6.5; items 27, 28): MTOM read as it arrives
(:class:`~gateway.protocols.xca.answerstream.AnswerStream`), the root found by ``start`` and
parts before it spooled; or plain ``application/soap+xml`` read whole up to
``settings.max_inline_bytes`` with its documents inline, which are then spooled. The
envelope is held against the request by :func:`~gateway.protocols.xca.screening.screen`
(items 18, 20, 25).

Failures: anything before the envelope is read — no base URL answered, TLS, a timeout, a
status other than 2xx, a Content-Type that is neither MTOM nor SOAP, a cut or stalled body,
an unreadable envelope, a SOAP Fault — becomes one error per document of the group,
XDSUnavailableCommunity on a RAD-75, XDSRepositoryError on a RAD-69, whose context names the
upstream (iheos-toolkit2 #67); :func:`call` does not raise for them. After the envelope, a
failure reaches the writer as :class:`~gateway.protocols.xca.results.PartFailed` from the
parts (see :mod:`.answerstream`).

Lifetime: the upstream connection stays open while the parts are read; it goes back to the
pool once the body has been read to its end (with the last wanted part), and is closed by
:attr:`GroupAnswer.close` otherwise, which also discards the group's spool files. Cancelling
:func:`call` releases both before the cancellation propagates.
:func:`spill` (in :mod:`.spill`) turns a live answer into a spooled one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import uuid

import aiohttp

from gateway.errors import GatewayError
from gateway.exchange import Leg
from gateway.protocols.xca.answerstream import AnswerStream
from gateway.protocols.xca.envelope import build_request, new_message_id, parse_response
from gateway.protocols.xca.errors import AnswerUnreadable, MtomError
from gateway.protocols.xca.fetching import Fetching
from gateway.protocols.xca.model import (
    Action,
    Addressing,
    DocumentRequest,
    DocumentResponse,
    ErrorCode,
    Namespace,
    RegistryError,
    RetrieveRequest,
    RetrieveResponse,
)
from gateway.protocols.xca.mtom import MtomWriter, is_multipart, is_soap, resolve
from gateway.protocols.xca.outcomes import Unroutable, community_error, document_error
from gateway.protocols.xca.plan import Carrier, Group
from gateway.protocols.xca.results import GroupAnswer
from gateway.protocols.xca.screening import screen
from gateway.protocols.xca.spill import spill
from gateway.protocols.xca.spool import SpoolBudget, SpoolFile, SpoolFull
from gateway.relay.forward import open_upstream
from gateway.relay.upstream import loggable_base
from gateway.settings import XcaSettings
from routing.errors import RoutingError
from routing.ids import HomeCommunityId
from routing.rad160 import ResourceKind
from routing.registry import Route, RouteKind
from routing.upstream import DocumentNamespace

__all__ = ["ACCEPT", "call", "spill"]

log = logging.getLogger("mado_gateway.xca")

ACCEPT = "multipart/related, application/soap+xml"
"""What a SOAP request to an upstream accepts: an MTOM package or a plain SOAP answer."""

_ACTIONS = {Carrier.RAD_75: Action.RAD_75, Carrier.RAD_69: Action.RAD_69}
_NAMESPACES = {DocumentNamespace.XDSB: Namespace.XDSB, DocumentNamespace.XDSIB: Namespace.IHERAD}
_REASON_LIMIT = 160


async def call(fetching: Fetching, group: Group, *, responding: bool) -> GroupAnswer:
    """Send ``group``'s documents to its SOAP upstream and return its answer, parts live.

    Never raises for an upstream failure: an unreachable or unreadable upstream becomes one
    RegistryError per document (XDSUnavailableCommunity for RAD-75, XDSRepositoryError for
    RAD-69). ``responding``: this gateway answers RAD-75 (the RIG rules: HomeCommunityId =
    ``fetching.own`` on every DocumentResponse, every error relocated there). Raises
    ValueError for a group whose carrier is not SOAP. See the module docstring.
    """
    request, relay, exchange = fetching.request, fetching.relay, fetching.exchange
    settings, budget, own = fetching.settings, fetching.budget, fetching.own
    transfer_syntaxes = fetching.transfer_syntaxes
    action = _ACTIONS.get(group.carrier)
    if action is None:
        raise ValueError(f"a {group.carrier} group is not sent over SOAP")
    upstream = group.upstream
    leg = exchange.open_leg(upstream.name)
    leg.transaction = action.transaction
    failed = _Failure(group, action, own.urn)
    writer = MtomWriter()
    envelope = build_request(
        Addressing(action=action.value, message_id=new_message_id(), to=upstream.base_urls[0]),
        RetrieveRequest(
            documents=_outbound(group.documents, action, own), transfer_syntaxes=transfer_syntaxes
        ),
        document_namespace=_NAMESPACES[upstream.document_request_namespace],
    )
    route = Route(
        kind=RouteKind.RELAY if action is Action.RAD_75 else RouteKind.SOURCE,
        upstream=upstream,
        base_urls=upstream.base_urls,
        path="",
        query="",
    )
    held = contextlib.AsyncExitStack()
    try:
        base, answer = await held.enter_async_context(
            open_upstream(
                request,
                route,
                exchange,
                resource=ResourceKind.INSTANCES,
                relay=relay,
                accept=ACCEPT,
                method="POST",
                body=writer.root(envelope) + writer.closing(),
                content_type=writer.content_type(action.value),
                leg=leg,
            )
        )
    except (GatewayError, RoutingError) as exc:
        await held.aclose()
        return failed.answer(str(exc))
    except BaseException:
        await held.aclose()
        raise
    stream = AnswerStream(
        answer, idle_s=upstream.timeouts.read_idle_s, leg=leg, exchange=exchange, base=base
    )
    try:
        return await _answer(
            answer,
            stream,
            held=held,
            group=group,
            settings=settings,
            budget=budget,
            own=own,
            responding=responding,
        )
    except AnswerUnreadable as exc:
        _log_unreadable(leg, base, exc.reason)
        stream.abandon()
        stream.discard()
        await held.aclose()
        return failed.answer(f"upstream {upstream.name}: {exc.reason}")
    except BaseException:
        stream.abandon()
        stream.discard()
        await held.aclose()
        raise


async def _answer(
    answer: aiohttp.ClientResponse,
    stream: AnswerStream,
    *,
    held: contextlib.AsyncExitStack,
    group: Group,
    settings: XcaSettings,
    budget: SpoolBudget,
    own: HomeCommunityId,
    responding: bool,
) -> GroupAnswer:
    """Read the envelope, screen it, and hand over the rest. Raises AnswerUnreadable."""
    content_type = answer.headers.get("Content-Type", "")
    if is_multipart(content_type):
        xml = await stream.read_root(
            content_type,
            max_root_bytes=settings.max_envelope_bytes,
            budget=budget,
            max_early=len(group.documents),
        )
        max_bytes = settings.max_envelope_bytes
    elif is_soap(content_type):
        xml = await stream.read_whole(max_bytes=settings.max_inline_bytes)
        max_bytes = settings.max_inline_bytes
    else:
        raise AnswerUnreadable("the answer is neither an MTOM package nor a SOAP message")
    _, response = parse_response(xml, max_bytes=max_bytes)
    del xml
    try:
        resolve(response)  # one part per xop:Include (digest §2.8)
    except MtomError as exc:
        raise AnswerUnreadable("two documents of the answer name the same part") from exc
    response, inline = _spool_inline(response, budget, stream.lost)
    screened = screen(
        group.documents,
        response,
        upstream=group.upstream.name,
        own=own.urn,
        responding=responding,
        cross_community=group.carrier is Carrier.RAD_75,
        lost=stream.lost,
    )
    ready = [(cid, spooled) for cid, spooled in inline if cid in screened.wanted]
    ready += [(cid, spooled) for cid, spooled in stream.early.items() if cid in screened.wanted]
    for cid, spooled in itertools.chain(inline, list(stream.early.items())):
        if cid not in screened.wanted:
            spooled.discard()
    live = _Live(stream, held, [spooled for _, spooled in inline])
    return GroupAnswer(
        upstream=group.upstream.name,
        documents=screened.documents,
        errors=screened.errors,
        parts=stream.parts(screened.wanted, ready),
        close=live.close,
    )


class _Live:
    """What a live group holds: the answer's connection and its spool files."""

    def __init__(
        self, stream: AnswerStream, held: contextlib.AsyncExitStack, files: list[SpoolFile]
    ) -> None:
        self._stream = stream
        self._held = held
        self._files = files
        self._closed = False

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stream.abandon()  # recorded only when the body had not ended
        self._stream.discard()
        for spooled in self._files:
            spooled.discard()
        await self._held.aclose()


def _outbound(
    documents: tuple[DocumentRequest, ...], action: Action, own: HomeCommunityId
) -> tuple[DocumentRequest, ...]:
    if action is Action.RAD_75:
        return documents
    return tuple(dataclasses.replace(d, home_community_id=own.urn) for d in documents)


def _spool_inline(
    response: RetrieveResponse, budget: SpoolBudget, lost: set[str]
) -> tuple[RetrieveResponse, list[tuple[str, SpoolFile]]]:
    """``response`` with each inline document moved to a spool file and named by a new
    Content-ID; one that does not fit is named and added to ``lost``."""
    token = uuid.uuid4().hex
    spooled: list[tuple[str, SpoolFile]] = []
    documents: list[DocumentResponse] = []
    for index, document in enumerate(response.documents):
        if document.inline is None:
            documents.append(document)
            continue
        content_id = f"inline{index}.{token}@mado-gateway"
        documents.append(dataclasses.replace(document, content_id=content_id, inline=None))
        target = budget.file()
        try:
            target.write(document.inline)
        except SpoolFull:
            lost.add(content_id)
            continue
        target.finish()
        spooled.append((content_id, target))
    if not spooled and not lost:
        return response, spooled
    return dataclasses.replace(response, documents=tuple(documents)), spooled


@dataclasses.dataclass(frozen=True, slots=True)
class _Failure:
    """The answer of a group whose upstream could not be used."""

    group: Group
    action: Action
    location: str

    def answer(self, reason: str) -> GroupAnswer:
        reason = " ".join(reason.split())[:_REASON_LIMIT]
        return GroupAnswer(
            upstream=self.group.upstream.name,
            errors=tuple(self._error(document, reason) for document in self.group.documents),
        )

    def _error(self, document: DocumentRequest, reason: str) -> RegistryError:
        if self.action is Action.RAD_75:
            return community_error(
                Unroutable.UNAVAILABLE_COMMUNITY, document, location=self.location, failure=reason
            )
        return document_error(
            ErrorCode.REPOSITORY,
            document,
            f"the Imaging Document Source could not be used ({reason})",
            location=self.location,
        )


def _log_unreadable(leg: Leg, base: str, reason: str) -> None:
    log.warning(
        "upstream's SOAP answer could not be used",
        extra={"upstream": leg.upstream, "base_url": loggable_base(base), "reason": reason},
    )
