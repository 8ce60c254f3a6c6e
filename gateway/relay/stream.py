"""The stream phase of a relay: an upstream answer to the client, block by block, ended only
when the upstream's body really ended.

* Status, end-to-end headers, then the body chunk by chunk as it arrives, always with chunked
  transfer encoding. The leg is announced to the sinks before the first byte
  (:meth:`~gateway.exchange.Telemetry.answered`) and the exchange sealed — recorded, audit
  journal included — before the terminating chunk, so no client ever holds a complete
  answer whose record could still be lost. Each write waits until the client's socket has
  room (backpressure), and the upstream socket is paused while our read buffer is full, so
  memory per stream stays bounded whatever the size of the study and the speed of the
  client.
* Once the response has started, an upstream failure aborts the client's connection (no
  terminating chunk) and marks the exchange ``aborted``: a truncated body never ends like a
  complete one. Failures are: a body shorter than its Content-Length or without its last
  chunk (aiohttp's parser says so); a close-delimited body whose connection was not closed
  in order, e.g. reset (:func:`~gateway.relay.bodyend.ended_in_order`); a multipart body that
  does not end with its close delimiter (:class:`~gateway.relay.multipart.CloseCheck`);
  ``read_idle_s`` spent waiting for the upstream (:class:`~gateway.relay.bodyend.IdleWatchdog`,
  whatever state aiohttp's parser is in). Each is logged at WARNING with the upstream's name
  and base URL; a client that went away, at INFO. The leg records how its body ended
  (:class:`~gateway.exchange.StreamEnd`), its bytes and times.
* Each DICOM part's identity is added to the exchange's tally as it streams by
  (:class:`~gateway.relay.partscan.PartScanner`, :meth:`~gateway.exchange.Exchange.note_instance`),
  so what the stream keeps per instance is a few counters, not the identity.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp
from aiohttp import web

from gateway.exchange import Exchange, Leg, Outcome, StreamEnd, Telemetry
from gateway.relay.bodyend import IdleWatchdog, Interruptible, close_delimited, ended_in_order
from gateway.relay.headers import response_headers
from gateway.relay.multipart import CloseCheck, boundary_in
from gateway.relay.partscan import PartScanner
from gateway.relay.rawcopy import Framing, Progress, RawUpstream, relay_raw
from gateway.relay.rawio import RawClient
from gateway.relay.takeover import RAW_MIN_LENGTH, SplitHandler
from gateway.relay.upstream import loggable_base
from routing.media import MediaType, media_or_none

__all__ = ["BodyRewriter", "RewriterFor", "stream_answer"]

log = logging.getLogger("mado_gateway.forward")


class BodyRewriter(Protocol):
    """What a protocol may put between the upstream's body and the client (metadata URLs).

    ``feed`` returns the bytes to send for a block (possibly holding some back), ``flush``
    the rest at the end; either may raise ``aiohttp.ClientPayloadError`` for a body it
    cannot rewrite safely, which aborts the answer like a cut upstream body.
    """

    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


RewriterFor = Callable[[str, str], BodyRewriter | None]
"""``(base_url, content_type) -> rewriter or None``: the protocol's choice for one answer."""


async def stream_answer(
    request: web.Request,
    answer: aiohttp.ClientResponse,
    exchange: Exchange,
    leg: Leg,
    rewriter: BodyRewriter | None,
    *,
    base: str,
    idle_s: float,
    telemetry: Telemetry,
) -> web.StreamResponse:
    """Relay ``answer`` (a 2xx or 304 that :func:`~gateway.relay.forward.open_upstream` accepted
    on ``leg``).

    ``base`` is the base URL it came from (for logs); ``idle_s`` the upstream's
    ``read_idle_s``; ``telemetry`` hears of the leg before its first byte and gets the
    exchange sealed before the last. Returns the response, prepared: complete, or aborted
    without its terminating chunk — see the module docstring.
    """
    # Always chunked, never the upstream's Content-Length: only the terminating chunk then
    # says "complete", and it is written after the exchange is in the audit journal, so a
    # gateway killed at that moment can never have delivered an unrecorded answer.
    response = web.StreamResponse(status=answer.status, headers=response_headers(answer.headers))
    response.enable_chunked_encoding()
    check = scanner = None
    content_type = answer.headers.get("Content-Type", "")
    media = media_or_none(content_type)  # open_upstream refused an unreadable one
    if media is not None and media.type == "multipart":
        boundary = boundary_in(media)  # open_upstream refused an answer without one
        check = CloseCheck(boundary)
        if rewriter is None and _carries_dicom(media):
            scanner = PartScanner(boundary, exchange.note_instance)
    telemetry.answered(exchange, leg)
    await response.prepare(request)
    exchange.status = answer.status

    progress = Progress(CloseCheck.START)
    raw = await _take_over(request, response, answer, rewriter)
    reader: Interruptible = answer.content if raw is None else raw[0]
    watch = IdleWatchdog(reader, idle_s)
    end, why = StreamEnd.COMPLETE, None
    try:
        if raw is None:
            await _copy(
                answer.content,
                response.write,
                progress,
                rewriter,
                scanner=scanner,
                watch=watch,
                check=check,
            )
        else:
            await _copy_raw(raw, progress, scanner=scanner, watch=watch, check=check)
    except ConnectionResetError:  # first: aiohttp's write error is also a ClientError
        end = StreamEnd.CLIENT
    except (aiohttp.ClientError, TimeoutError) as exc:
        end = StreamEnd.STALLED if isinstance(exc, TimeoutError) else StreamEnd.TRUNCATED
    finally:
        watch.cancel()
        leg.bytes += progress.sent
        exchange.bytes_sent += progress.sent
        if scanner is not None:
            scanner.close()
    if end is StreamEnd.COMPLETE:
        if check is not None and not check.complete(progress.tail):
            end, why = StreamEnd.TRUNCATED, "no close delimiter at the end"
        elif raw is None and close_delimited(answer) and not ended_in_order(answer):
            end, why = StreamEnd.TRUNCATED, "connection not closed in order"
    leg.end, leg.end_s = end, exchange.elapsed()
    if end is not StreamEnd.COMPLETE:
        _abort(request, exchange, leg, base, why)
        return response
    # Complete: record it (audit journal included) before the terminating chunk tells the
    # client so. The answer is always chunked for this reason (see above).
    exchange.outcome = Outcome.COMPLETE
    telemetry.seal(exchange)
    with contextlib.suppress(ConnectionResetError):  # the client left before the last chunk
        await response.write_eof()
    return response


async def _copy_raw(
    raw: tuple[RawUpstream, RawClient, SplitHandler],
    progress: Progress,
    *,
    scanner: PartScanner | None,
    watch: IdleWatchdog,
    check: CloseCheck | None,
) -> None:
    """:func:`~gateway.relay.rawcopy.relay_raw` with the scanner and the check; both ends'
    descriptors are closed when it is over, and a chunked body read to its end hands its
    connection back to the pool."""
    upstream, client, protocol = raw
    try:
        await relay_raw(
            upstream,
            client,
            progress,
            watch=watch,
            window=None if check is None else check.window,
            skippable=None if scanner is None else scanner.skippable,
            pass_over=None if scanner is None else scanner.pass_over,
            feed=None if scanner is None else scanner.feed,
        )
        if upstream.framing is Framing.CHUNKED:
            protocol.give_back()
    finally:
        upstream.close()
        client.close()


async def _copy(
    content: aiohttp.StreamReader,
    write: Callable[[bytes], Awaitable[None]],
    progress: Progress,
    rewriter: BodyRewriter | None,
    *,
    scanner: PartScanner | None,
    watch: IdleWatchdog,
    check: CloseCheck | None,
) -> None:
    """Copy the upstream body to the client until its end; errors propagate.

    The hot loops: one ``readany()`` and one ``write()`` per buffered block (each write waits
    for the client's socket: backpressure), no copies and no other per-block work beyond what
    the variant needs, plus what ends a body exactly: the tail kept for ``check``
    (``CloseCheck.keep`` inlined: a reference unless the block is shorter than the window)
    and the idle watchdog's clock (``since``: BUSY while writing, the time once done).
    """
    sent = 0
    tail = CloseCheck.START
    window = 0 if check is None else check.window
    busy, clock = IdleWatchdog.BUSY, watch.clock
    try:
        if rewriter is not None:  # metadata: URLs rewritten on the fly
            while chunk := await content.readany():
                watch.since = busy
                out = rewriter.feed(chunk)
                await write(out)
                sent += len(out)
                tail = chunk if len(chunk) >= window else (tail + chunk)[-window:]
                watch.since = clock()
            out = rewriter.flush()
            await write(out)
            sent += len(out)
        elif scanner is not None:  # DICOM instances: note who and what each part is about
            feed = scanner.feed
            while chunk := await content.readany():
                watch.since = busy
                await write(chunk)
                sent += len(chunk)
                feed(chunk)
                tail = chunk if len(chunk) >= window else (tail + chunk)[-window:]
                watch.since = clock()
        else:
            while chunk := await content.readany():
                watch.since = busy
                await write(chunk)
                sent += len(chunk)
                tail = chunk if len(chunk) >= window else (tail + chunk)[-window:]
                watch.since = clock()
    finally:
        progress.sent, progress.tail = sent, tail


async def _take_over(
    request: web.Request,
    response: web.StreamResponse,
    answer: aiohttp.ClientResponse,
    rewriter: BodyRewriter | None,
) -> tuple[RawUpstream, RawClient, SplitHandler] | None:
    """Both ends for :func:`~gateway.relay.rawcopy.relay_raw` when the answer's connection
    was held for it (:mod:`gateway.relay.takeover`) and the body may be passed through below
    aiohttp: no rewriter, the client on plain TCP with nothing left to send, a chunked or
    close-delimited body or one of at least :data:`RAW_MIN_LENGTH` bytes. Otherwise the held
    answer is released to aiohttp and None returned."""
    protocol = _protocol(answer)
    if protocol is None or not protocol.holding:
        return None
    transport = request.transport
    framing, length = _framing(answer)
    if (
        protocol.transport is None  # the upstream connection is already gone
        or rewriter is not None
        or transport is None
        or transport.get_extra_info("sslcontext") is not None
        or (length is not None and length < RAW_MIN_LENGTH)
    ):
        protocol.release()
        return None
    try:
        await response.write(b"")  # the status line and headers, which aiohttp holds back
    except ConnectionResetError:  # the client left: the ordinary copy finds out too
        protocol.release()
        return None
    if transport.is_closing() or transport.get_write_buffer_size():
        protocol.release()
        return None
    held, fd = protocol.take()
    client = RawClient(transport.get_extra_info("socket").fileno())
    return RawUpstream(fd, held, framing, length), client, protocol


def _protocol(answer: aiohttp.ClientResponse) -> SplitHandler | None:
    protocol = getattr(answer, "upstream_protocol", None)
    return protocol if isinstance(protocol, SplitHandler) else None


def _framing(answer: aiohttp.ClientResponse) -> tuple[Framing, int | None]:
    """How the body of ``answer`` ends (RFC 9112 §6.3), and its length when it has one."""
    codings = answer.headers.get("Transfer-Encoding", "")
    if codings.rsplit(",", 1)[-1].strip().lower() == "chunked":
        return Framing.CHUNKED, None
    if close_delimited(answer):
        return Framing.CLOSE, None
    return Framing.LENGTH, int(answer.headers["Content-Length"])


def _carries_dicom(media: MediaType) -> bool:
    """multipart/related with ``type="application/dicom"`` (PS3.18 §8.7.3.5)."""
    return any(value.lower() == "application/dicom" for value in media.values("type"))


def _abort(request: web.Request, exchange: Exchange, leg: Leg, base: str, why: str | None) -> None:
    """Cut the client connection without the terminating chunk, so truncation is visible.

    The handler then returns the prepared response; aiohttp's final ``write_eof`` meets a
    closed transport and writes nothing. An abort the upstream caused is logged at WARNING.
    """
    reason = leg.end
    assert reason is not None
    exchange.outcome = Outcome.ABORTED
    exchange.error = reason.value
    by_client = reason is StreamEnd.CLIENT
    log.log(
        logging.INFO if by_client else logging.WARNING,
        "stream aborted: the client went away"
        if by_client
        else "stream aborted: the upstream's body did not end complete",
        extra={
            "upstream": leg.upstream,
            "base_url": loggable_base(base),
            "reason": reason.value,
            "detail": why,
            "bytes": leg.bytes,
        },
    )
    transport = request.transport
    if transport is not None:
        transport.abort()
