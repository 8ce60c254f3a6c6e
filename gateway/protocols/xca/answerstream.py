"""One upstream's SOAP answer read as the socket delivers it: the envelope first, then the
parts, one whole part at a time, in arrival order (digest §6.4 item 1, §6.5).

:class:`AnswerStream` owns the reading of one answer body (an ``aiohttp`` StreamReader) under
the upstream's idle limit (:class:`~gateway.relay.bodyend.IdleWatchdog`: time spent while
the caller is busy elsewhere does not count) and the bookkeeping of its leg: bytes read, how
and when the body ended (:class:`~gateway.exchange.StreamEnd`).

* :meth:`AnswerStream.read_root` — an MTOM answer up to its root part. Parts that come before
  the root (legal when ``start`` names a later part, RFC 2387 §3.2) go to spool files, at most
  ``max_early`` of them and within the request's spool budget; the Content-IDs of those that
  did not fit are :attr:`AnswerStream.lost`.
* :meth:`AnswerStream.read_whole` — a plain ``application/soap+xml`` answer (documents inline
  in base64), read whole up to a cap.
* :meth:`AnswerStream.parts` — after the root: first the parts kept on disk, then the live
  ones, as :class:`~gateway.protocols.xca.results.Part`. Parts no returned document references
  are read past. A part's ``chunks`` raise :class:`PartFailed` when the body is cut
  (``truncated``), stops arriving (``stalled``) or cannot be read (``unreadable``); the
  iterator raises it when the body ends before every wanted part came (``unresolved``,
  digest §9 item 28). The end of the body is checked as soon as the last wanted part has
  been read, inside that part's ``chunks`` (before the first spooled part when every wanted
  part came before the root): a writer that stops asking once it has every part still sees
  a missing closing delimiter (``truncated``, item 28), and the leg's end is recorded
  before the writer seals the exchange. The connection is then released to the pool.

Reading before the root raises :class:`~gateway.protocols.xca.errors.AnswerUnreadable` with our
own sentence; the leg's end is recorded either way. Cancellation: nothing is held across an
``await`` but the reader itself; :meth:`AnswerStream.discard` releases the spool files.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Collection, Sequence

import aiohttp

from gateway.exchange import Exchange, Leg, StreamEnd
from gateway.protocols.xca.errors import AnswerUnreadable, EnvelopeTooLarge, MtomError
from gateway.protocols.xca.mtom import (
    MtomEvent,
    MtomReader,
    PartData,
    PartEnd,
    PartStart,
    RootPart,
)
from gateway.protocols.xca.results import Part, PartFailed
from gateway.protocols.xca.spool import SpoolBudget, SpoolFile, SpoolFull
from gateway.relay.bodyend import IdleWatchdog, close_delimited, ended_in_order
from gateway.relay.upstream import loggable_base

__all__ = ["AnswerStream", "spooled_part"]

log = logging.getLogger("mado_gateway.xca")


class _Ended(Exception):
    """The body could not be read on: ``end`` is how it ended, ``reason`` a bounded label."""

    def __init__(self, end: StreamEnd, reason: str) -> None:
        super().__init__(reason)
        self.end = end
        self.reason = reason


class AnswerStream:
    """The body of one upstream's answer (module docstring). ``base`` is the base URL that
    answered (for logs only)."""

    def __init__(
        self,
        answer: aiohttp.ClientResponse,
        *,
        idle_s: float,
        leg: Leg,
        exchange: Exchange,
        base: str,
    ) -> None:
        self._answer = answer
        self._content = answer.content
        self._leg = leg
        self._exchange = exchange
        self._base = base
        self._watch = IdleWatchdog(answer.content, idle_s)
        self._watch.since = IdleWatchdog.BUSY  # nobody waits for the upstream yet
        self._events: deque[MtomEvent] = deque()
        self._reader: MtomReader | None = None
        self._at_end = False
        self.early: dict[str, SpoolFile] = {}
        self.lost: set[str] = set()

    # -- reading ------------------------------------------------------------------------

    async def _chunk(self) -> bytes:
        """The next block of the body; ``b""`` at its end. Raises :class:`_Ended`."""
        watch = self._watch
        watch.since = watch.clock()
        try:
            chunk = await self._content.readany()
        except TimeoutError as exc:  # UpstreamIdle, or aiohttp's own sock_read
            raise _Ended(StreamEnd.STALLED, "stalled") from exc
        except aiohttp.ClientError as exc:  # cut short: the parser or the connection says so
            raise _Ended(StreamEnd.TRUNCATED, "truncated") from exc
        finally:
            watch.since = IdleWatchdog.BUSY
        self._leg.bytes += len(chunk)
        return chunk

    async def _event(self) -> MtomEvent | None:
        """The next MTOM event; None once the package ended complete. Raises :class:`_Ended`."""
        reader = self._reader
        assert reader is not None
        while not self._events:
            if self._at_end:
                return None
            chunk = await self._chunk()
            try:
                if not chunk:
                    self._at_end = True
                    reader.close()
                    return None
                self._events.extend(reader.feed(chunk))
            except EnvelopeTooLarge as exc:
                raise _Ended(StreamEnd.TRUNCATED, "envelope-too-large") from exc
            except MtomError as exc:
                reason = "truncated" if self._at_end else "unreadable"
                raise _Ended(StreamEnd.TRUNCATED, reason) from exc
        return self._events.popleft()

    async def read_root(
        self, content_type: str, *, max_root_bytes: int, budget: SpoolBudget, max_early: int
    ) -> bytes:
        """The root part (the envelope) of an MTOM answer. Raises :class:`AnswerUnreadable`."""
        try:
            self._reader = MtomReader(content_type, max_root_bytes=max_root_bytes)
        except MtomError as exc:
            self._ended(StreamEnd.TRUNCATED, "unreadable")
            raise AnswerUnreadable("the answer's MTOM Content-Type is unreadable") from exc
        current: SpoolFile | None = None
        current_id = ""
        try:
            while True:
                event = await self._event()
                if event is None:
                    raise _Ended(StreamEnd.TRUNCATED, "no-root")
                if isinstance(event, RootPart):
                    return event.envelope
                if isinstance(event, PartStart):
                    current_id, current = event.content_id, None
                    if len(self.early) < max_early:
                        current = budget.file()
                    else:
                        self.lost.add(current_id)
                elif isinstance(event, PartData) and current is not None:
                    try:
                        current.write(event.data)
                    except SpoolFull:  # the file is discarded; its document gets an error
                        current = None
                        self.lost.add(current_id)
                elif isinstance(event, PartEnd) and current is not None:
                    current.finish()
                    self.early[current_id] = current
                    current = None
        except _Ended as ended:
            if current is not None:
                current.discard()
            self._ended(ended.end, ended.reason)
            reason = f"the answer ended before its envelope ({ended.reason})"
            raise AnswerUnreadable(reason) from None

    async def read_whole(self, *, max_bytes: int) -> bytes:
        """A plain SOAP answer, whole. Raises :class:`AnswerUnreadable` when it is cut, stalls
        or passes ``max_bytes``."""
        body = bytearray()
        try:
            while chunk := await self._chunk():
                body += chunk
                if len(body) > max_bytes:
                    raise _Ended(StreamEnd.TRUNCATED, "too-large")
        except _Ended as ended:
            self._ended(ended.end, ended.reason)
            raise AnswerUnreadable(f"the answer could not be read whole ({ended.reason})") from None
        if close_delimited(self._answer) and not ended_in_order(self._answer):
            self._ended(StreamEnd.TRUNCATED, "truncated")
            raise AnswerUnreadable("the answer's connection was not closed in order")
        self._ended(StreamEnd.COMPLETE, None)
        return bytes(body)

    async def parts(
        self, wanted: Collection[str], ready: Sequence[tuple[str, SpoolFile]]
    ) -> AsyncIterator[Part]:
        """``ready`` (spooled parts) first, then the live parts whose Content-ID is in
        ``wanted`` (module docstring). Each ready file is discarded once read.

        The rest of the body is read, and its end checked, as soon as the last wanted part
        has been read — within that part's ``chunks`` (or before the first ready part when
        no live part is wanted) — so the leg's end is known before the writer seals the
        exchange, even when it stops asking for parts once it has them all.
        """
        remaining = set(wanted) - {content_id for content_id, _ in ready}
        if not remaining:
            await self._finish()
        for content_id, spooled in ready:
            yield Part(content_id=content_id, chunks=spooled_part(spooled))
        if self._reader is None:  # a plain SOAP answer: nothing is live
            return
        try:
            while remaining and (event := await self._event()) is not None:
                if not isinstance(event, PartStart):
                    continue  # the rest of a part its reader left unread
                if event.content_id not in remaining:
                    await self._skip()
                    continue
                remaining.discard(event.content_id)
                yield Part(content_id=event.content_id, chunks=self._chunks(last=not remaining))
        except _Ended as ended:
            self._ended(ended.end, ended.reason)
            raise PartFailed(ended.reason) from None
        if remaining:
            self._ended(StreamEnd.TRUNCATED, "unresolved")
            raise PartFailed("unresolved")
        await self._finish()

    async def _chunks(self, *, last: bool) -> AsyncIterator[bytes]:
        try:
            while True:
                event = await self._event()
                if isinstance(event, PartData):
                    yield event.data
                elif isinstance(event, PartEnd):
                    break
                else:  # the package ended inside a part: the reader would have said so
                    raise _Ended(StreamEnd.TRUNCATED, "truncated")
        except _Ended as ended:
            self._ended(ended.end, ended.reason)
            raise PartFailed(ended.reason) from None
        if last:
            await self._finish()

    async def _finish(self) -> None:
        """Read what follows the wanted parts to the end of the body and check that end.
        Raises :class:`PartFailed` when it is not a complete package."""
        try:
            while self._reader is not None and await self._event() is not None:
                pass  # trailing parts nobody asked for, and the epilogue
        except _Ended as ended:
            self._ended(ended.end, ended.reason)
            raise PartFailed(ended.reason) from None
        self._ended(StreamEnd.COMPLETE, None)
        if self._leg.end is not StreamEnd.COMPLETE:  # it ended earlier, and not well
            raise PartFailed(str(self._leg.end))
        self._answer.release()  # read to its end: the connection can serve another request

    async def _skip(self) -> None:
        while True:
            event = await self._event()
            if event is None or isinstance(event, PartEnd):
                return

    # -- the end ------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._leg.end is not None

    def abandon(self) -> None:
        """The answer is left before its end (the client went away, or another group
        failed): recorded as such unless the body already ended."""
        self._ended(StreamEnd.CLIENT, "abandoned")

    def _ended(self, end: StreamEnd, reason: str | None) -> None:
        self._watch.cancel()
        if self._leg.end is not None:
            return
        self._leg.end, self._leg.end_s = end, self._exchange.elapsed()
        if end in (StreamEnd.COMPLETE, StreamEnd.CLIENT):
            return
        log.warning(
            "upstream's SOAP answer did not end complete",
            extra={
                "upstream": self._leg.upstream,
                "base_url": loggable_base(self._base),
                "reason": reason,
                "bytes": self._leg.bytes,
            },
        )

    def discard(self) -> None:
        """Release every spool file still held for early parts."""
        for spooled in self.early.values():
            spooled.discard()
        self.early.clear()


async def spooled_part(spooled: SpoolFile) -> AsyncIterator[bytes]:
    """The bytes of a finished spool file, then the file discarded (also when the reader
    stops early). Raises :class:`PartFailed` (``spool-error``) when it cannot be read."""
    try:
        for block in spooled.chunks():
            yield block
    except (OSError, ValueError):
        raise PartFailed("spool-error") from None
    finally:
        spooled.discard()
