"""The MTOM answer to a RAD-69 / RAD-75 request, written as it streams (digest §2.8, §6.2,
§6.6; items 1, 3, 7, 12, 13, 15).

:func:`send_answer` writes a ``web.StreamResponse`` by hand (aiohttp's ``MultipartWriter``
can neither write the MTOM Content-Type nor stream): status 200, the Content-Type of
:meth:`~.mtom.MtomWriter.content_type` (``type``, ``start``, ``start-info``), chunked framing;
the root part first (the envelope, whose ``wsa:RelatesTo`` the caller set), then the parts:
documents a peer sent inline, then each group's parts in the order given, each renamed to
its new Content-ID, its bytes unchanged — CR/LF at either edge included (items 12, 13). A
part no document references is skipped; a referenced part seen twice is skipped the second
time. The first 16 KiB of each part go to :func:`gateway.relay.dicomheader.read_identity`
and the instance is noted on the exchange (the patient of the audit trail, item 40).

Order of the moments that matter (design.md §6): every leg that answered a returned document
is announced to the telemetry before the first byte; the exchange is sealed — its audit
record in the journal — before the closing delimiter is written. A part that fails
(:class:`~.results.PartFailed`), a group whose parts end before every referenced one came,
or an internal error after the envelope went out aborts the connection: no closing
delimiter, no terminating chunk, the exchange ``aborted`` (item 15) — the envelope promised
documents that will not all come, so the client must see a broken transfer, never a
well-formed short one. A client that goes away ends it the same way (cause ``client``).
The caller closes every group afterwards, which releases their upstream connections.
Each write waits for the client's socket (backpressure): memory holds one block at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from gateway.exchange import Exchange, Leg, Outcome, Telemetry
from gateway.protocols.xca.mtom import MtomWriter
from gateway.protocols.xca.results import GroupAnswer, Part, PartFailed
from gateway.relay.dicomheader import read_identity
from gateway.relay.partscan import HEADER_BYTES

__all__ = ["Stream", "send_answer"]

log = logging.getLogger("mado_gateway.xca")


@dataclass(frozen=True, slots=True, kw_only=True)
class Stream:
    """One group's parts on their way out: its answer, its Content-IDs → the new ones, and
    the leg that fetched them (None: no upstream was asked)."""

    answer: GroupAnswer
    renames: Mapping[str, str]
    leg: Leg | None


async def send_answer(
    request: web.Request,
    exchange: Exchange,
    *,
    telemetry: Telemetry,
    writer: MtomWriter,
    envelope: bytes,
    streams: Sequence[Stream],
    inline: Sequence[tuple[str, bytes]] = (),
) -> web.StreamResponse:
    """Write the answer (module docstring). Returns the prepared response: complete, or
    aborted. ``asyncio.CancelledError`` (the client left) is recorded and passes through."""
    response = web.StreamResponse(status=200, headers={"Content-Type": writer.content_type()})
    response.enable_chunked_encoding()
    announced = False
    for stream in streams:
        if stream.leg is not None and stream.renames:
            telemetry.answered(exchange, stream.leg)
            announced = True
    if not announced:
        exchange.mark_first_byte()
    exchange.status = 200
    await response.prepare(request)
    out = _Out(response, exchange)
    try:
        await out.write(writer.root_head(envelope))
        await out.write(envelope)
        del envelope  # about 1 MB for 2,000 documents: not held while the parts stream
        for content_id, data in inline:
            await out.write(writer.part_head(content_id))
            await out.write(data)
            _note(exchange, data[:HEADER_BYTES])
        for stream in streams:
            await _drain(out, writer, stream)
    except ConnectionResetError:  # aiohttp's write error when the client has gone
        _abort(request, exchange, "client")
        return response
    except asyncio.CancelledError:  # the client has gone and aiohttp cancels the handler
        _abort(request, exchange, "client")
        raise
    except PartFailed as exc:
        _abort(request, exchange, exc.reason)
        return response
    except Exception:
        log.exception("internal error while streaming an XCA-I answer")
        _abort(request, exchange, "internal")
        return response
    # Complete: on record (audit journal included) before the closing delimiter says so.
    exchange.outcome = Outcome.COMPLETE
    telemetry.seal(exchange)
    try:
        await out.write(writer.closing())
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client left with the last bytes in flight: the record stands
    return response


class _Out:
    """The response body, counted on the exchange."""

    __slots__ = ("_response", "exchange")

    def __init__(self, response: web.StreamResponse, exchange: Exchange) -> None:
        self._response = response
        self.exchange = exchange

    async def write(self, data: bytes) -> None:
        await self._response.write(data)
        self.exchange.bytes_sent += len(data)


async def _drain(out: _Out, writer: MtomWriter, stream: Stream) -> None:
    """Every referenced part of ``stream`` to the client. Raises :class:`PartFailed` when
    its parts end before all have come."""
    expected = set(stream.renames)
    if not expected:
        return
    seen: set[str] = set()
    async for part in stream.answer.parts:
        new_id = stream.renames.get(part.content_id)
        if new_id is None or part.content_id in seen:
            await part.skip()
            continue
        seen.add(part.content_id)
        await out.write(writer.part_head(new_id))
        await _copy(out, part)
        if seen == expected:
            return  # what follows is nobody's: leave it to close()
    raise PartFailed("unresolved")


async def _copy(out: _Out, part: Part) -> None:
    prefix = bytearray()
    noted = False
    async for chunk in part.chunks:
        await out.write(chunk)
        if not noted:
            prefix += chunk[: HEADER_BYTES - len(prefix)]
            if len(prefix) >= HEADER_BYTES:
                _note(out.exchange, bytes(prefix))
                noted = True
    if not noted:
        _note(out.exchange, bytes(prefix))


def _note(exchange: Exchange, prefix: bytes) -> None:
    identity = read_identity(prefix)
    if identity is not None:
        exchange.note_instance(identity)


def _abort(request: web.Request, exchange: Exchange, reason: str) -> None:
    """Cut the connection: no closing delimiter, no terminating chunk."""
    exchange.outcome = Outcome.ABORTED
    exchange.error = reason
    by_client = reason == "client"
    log.log(
        logging.INFO if by_client else logging.WARNING,
        "XCA-I answer aborted: the client went away"
        if by_client
        else "XCA-I answer aborted: a document could not be delivered whole",
        extra={"reason": reason, "bytes": exchange.bytes_sent},
    )
    transport = request.transport
    if transport is not None:
        transport.abort()
