"""The pass-through copy below aiohttp: an upstream body read from its socket, relayed to the
client's socket in chunks, the bytes nobody needs to look at moved by the kernel alone.

Used by :func:`~gateway.relay.stream.stream_answer` when both connections are plain TCP and
the upstream connection was taken over (:mod:`gateway.relay.takeover`); the contract is the
stream phase's, unchanged:

* The body ends as its framing says (RFC 9112 §6.3): a Content-Length counted down, chunked
  framing decoded (§7.1), or, close-delimited, the connection closed in order. A body cut
  short, a reset connection, a malformed chunk raise ``aiohttp.ClientPayloadError``; the
  upstream silent for ``read_idle_s`` raises :class:`~gateway.relay.bodyend.UpstreamIdle`
  (the :class:`~gateway.relay.bodyend.IdleWatchdog` wakes the reader); a client that went
  away raises ``ConnectionResetError``. The terminating chunk is never written here.
* Bytes the relay must see — a part's head and the first bytes of its DICOM object (the
  scanner's), the last bytes of a multipart body (the close check's) — are read into one
  reusable buffer and written with their chunk header in one vectored send
  (:class:`~gateway.relay.rawio.RawClient`). Bytes it need not see — the rest of a part of
  known length, or any byte of a body nothing checks — are moved with ``splice(2)``: socket
  to pipe, pipe to socket, never copied to user space.
* One read or one splice at a time, each written before the next is read: memory is the
  buffer (:data:`BUFFER_BYTES`) and the pipe (1 MiB), whatever the body's size,
  and a slow client slows the upstream down.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import Callable

import aiohttp

from gateway.relay.bodyend import IdleWatchdog
from gateway.relay.rawio import (
    HAVE_SPLICE,
    PIPE_BYTES,
    SPLICE_FLAGS,
    RawClient,
    Readiness,
    make_pipe,
)

__all__ = ["BUFFER_BYTES", "Framing", "Progress", "RawUpstream", "relay_raw"]

BUFFER_BYTES = 256 * 1024
SPLICE_MIN = 32 * 1024  # fewer unseen bytes than this are read like the others
SCAN_READ = 32 * 1024  # the most read at once while the scanner looks at every byte
_MAX_CHUNK_LINE = 4096


class Framing(enum.Enum):
    LENGTH = "length"
    CHUNKED = "chunked"
    CLOSE = "close"


class _Chunk(enum.Enum):
    SIZE = 1  # reading a chunk-size line
    DATA = 2  # inside chunk data
    DATA_END = 3  # the CRLF after chunk data
    TRAILER = 4  # trailer fields after the last chunk
    DONE = 5


def _cut(why: str) -> aiohttp.ClientPayloadError:
    return aiohttp.ClientPayloadError(why)


class RawUpstream:
    """The body of one upstream answer, read from (a duplicate of) its socket descriptor.

    ``held`` are body bytes read before the takeover. :meth:`read` returns body bytes to look
    at (a view of the reusable buffer, valid until the next call), None once the body has
    ended complete; :meth:`splice` moves body bytes unseen into a pipe. Both raise as the
    module docstring says; the idle watchdog wakes them through :meth:`set_exception`.
    """

    def __init__(
        self, fd: int, held: bytes, framing: Framing, length: int | None = None
    ) -> None:
        """``fd``: a descriptor of the upstream socket this object owns (:meth:`close`)."""
        self.fd = fd
        self.framing = framing
        self._buffer = bytearray(max(BUFFER_BYTES, len(held)))
        self._view = memoryview(self._buffer)
        self._buffer[: len(held)] = held
        self._start, self._end = 0, len(held)
        # bytes left in the body (Content-Length) or in the current chunk
        self._left: int = length or 0 if framing is Framing.LENGTH else 0
        self._chunk = _Chunk.SIZE
        self._eof = False
        self.waiter = Readiness(asyncio.get_running_loop())

    def set_exception(self, exc: BaseException) -> None:
        self.waiter.set_exception(exc)

    def close(self) -> None:
        os.close(self.fd)

    @property
    def buffered(self) -> int:
        return self._end - self._start

    @property
    def complete(self) -> bool:
        """The body has ended as its framing says (read returned None)."""
        if self.framing is Framing.LENGTH:
            return self._left == 0
        if self.framing is Framing.CHUNKED:
            return self._chunk is _Chunk.DONE
        return self._eof

    def spliceable(self) -> int:
        """How many body bytes :meth:`splice` may move now (0: use :meth:`read`)."""
        if not HAVE_SPLICE or self._start != self._end or self._eof:
            return 0
        if self.framing is Framing.CLOSE:
            return PIPE_BYTES
        if self.framing is Framing.CHUNKED and self._chunk is not _Chunk.DATA:
            return 0
        return self._left

    def remaining(self) -> int | None:
        """Body bytes still to come, when the framing says (Content-Length)."""
        return self._left if self.framing is Framing.LENGTH else None

    async def read(self, limit: int = BUFFER_BYTES) -> memoryview | None:
        while True:
            if self.framing is Framing.CHUNKED and self._chunk is not _Chunk.DATA:
                if self._chunk is _Chunk.DONE:
                    return None
                await self._chunk_framing()
                continue
            if self.framing is not Framing.CLOSE and self._left == 0:
                if self.framing is Framing.LENGTH:
                    return None
                self._chunk = _Chunk.DATA_END
                continue
            if self._start == self._end and not await self._fill(limit):
                if self.framing is Framing.CLOSE:
                    return None
                raise _cut("the upstream closed the connection before the body's end")
            take = self._end - self._start
            if self.framing is not Framing.CLOSE:
                take = min(take, self._left)
                self._left -= take
            start = self._start
            self._start += take
            return self._view[start : start + take]

    async def splice(self, pipe: int, limit: int) -> int:
        """Move up to ``limit`` (≤ :meth:`spliceable`) body bytes into ``pipe``; 0 once a
        close-delimited body has ended."""
        while True:
            self.waiter.check()
            try:
                moved = os.splice(self.fd, pipe, limit, flags=SPLICE_FLAGS)
            except BlockingIOError:
                await self.waiter.readable(self.fd)
                continue
            except ConnectionError as exc:
                raise _cut("the upstream connection was reset") from exc
            if moved == 0:
                self._eof = True
                if self.framing is Framing.CLOSE:
                    return 0
                raise _cut("the upstream closed the connection before the body's end")
            if self.framing is not Framing.CLOSE:
                self._left -= moved
            return moved

    async def _fill(self, limit: int) -> bool:
        """Read more into the buffer (at most ``limit`` bytes); False at the end of the
        stream (FIN). Raises when the connection was reset."""
        if self._eof:
            return False
        if self._start == self._end:
            self._start = self._end = 0
        elif self._end == len(self._buffer):
            kept = self._end - self._start
            self._buffer[:kept] = self._view[self._start : self._end]
            self._start, self._end = 0, kept
        room = min(limit, len(self._buffer) - self._end)
        while True:
            self.waiter.check()
            try:
                got = os.readv(self.fd, [self._view[self._end : self._end + room]])
            except BlockingIOError:
                await self.waiter.readable(self.fd)
                continue
            except ConnectionError as exc:
                raise _cut("the upstream connection was reset") from exc
            if got == 0:
                self._eof = True
                return False
            self._end += got
            return True

    async def _chunk_framing(self) -> None:
        """Consume chunk framing (a size line, the CRLF after data, trailer fields)."""
        while True:
            data = self._view[self._start : self._end]
            if self._chunk is _Chunk.DATA_END:
                if len(data) >= 2:
                    if bytes(data[:2]) != b"\r\n":
                        raise _cut("a malformed chunk (no CRLF after its data)")
                    self._start += 2
                    self._chunk = _Chunk.SIZE
                    continue
            else:
                line_end = bytes(data[:_MAX_CHUNK_LINE]).find(b"\r\n")
                if line_end >= 0:
                    line = bytes(data[:line_end])
                    self._start += line_end + 2
                    if self._chunk is _Chunk.TRAILER:
                        if not line:
                            self._chunk = _Chunk.DONE
                            return
                        continue
                    size = _chunk_size(line)
                    if size == 0:
                        self._chunk = _Chunk.TRAILER
                        continue
                    self._left, self._chunk = size, _Chunk.DATA
                    return
                if len(data) >= _MAX_CHUNK_LINE:
                    raise _cut("a malformed chunk (a framing line too long)")
            if not await self._fill(BUFFER_BYTES):
                raise _cut("the upstream closed the connection before the last chunk")


def _chunk_size(line: bytes) -> int:
    """The size of a chunk-size line (RFC 9112 §7.1: hex digits, then optional extensions
    after ``;`` with whitespace only around them, no control characters)."""
    digits, semicolon, extensions = line.partition(b";")
    if semicolon:
        digits = digits.rstrip(b" \t")
        if extensions.translate(None, _EXTENSION_BYTES):
            raise _cut("a malformed chunk extension")
    if not digits or len(digits) > 15 or digits.translate(None, _HEX_DIGITS):
        raise _cut("a malformed chunk size")
    return int(digits, 16)


_HEX_DIGITS = b"0123456789abcdefABCDEF"
_EXTENSION_BYTES = bytes([9, *range(0x20, 0x7F)])


class Progress:
    """What a copy has done so far, readable after it raised: the bytes sent and the body's
    last bytes as far as they were looked at (for the close-delimiter check)."""

    __slots__ = ("sent", "tail")

    def __init__(self, tail: bytes) -> None:
        self.sent = 0
        self.tail = tail


async def relay_raw(
    upstream: RawUpstream,
    client: RawClient,
    seen: Progress,
    *,
    watch: IdleWatchdog,
    window: int | None,
    skippable: Callable[[], int] | None,
    pass_over: Callable[[int], None] | None,
    feed: Callable[[bytes], None] | None,
) -> None:
    """Copy the body to its end (see the module docstring); ``seen`` is kept up to date even
    when this raises.

    ``window``: the close check's tail length (None: nothing checks the body's end).
    ``skippable``/``pass_over``/``feed``: the part scanner's (None: no scanner). Without a
    scanner every byte may go unseen, except the last ``window`` of a body of known length;
    a close-delimited or chunked multipart body without a scanner is read whole (its end is
    not known in advance, and the close check needs its tail).
    """
    busy, clock = IdleWatchdog.BUSY, watch.clock
    pipe_r = pipe_w = -1
    try:
        while True:
            watch.since = clock()
            unseen = _unseen(upstream, window, skippable)
            if unseen >= SPLICE_MIN:
                if pipe_r < 0:
                    pipe_r, pipe_w = make_pipe()
                moved = await upstream.splice(pipe_w, min(unseen, PIPE_BYTES))
                if not moved:
                    continue  # a close-delimited body ended: read() says so next
                watch.since = busy
                await client.chunk_from(pipe_r, moved)
                seen.sent += moved
                if pass_over is not None:
                    pass_over(moved)
                seen.tail = b""  # unseen bytes: only what follows may show the close delimiter
                continue
            limit = BUFFER_BYTES if feed is None else SCAN_READ
            data = await upstream.read(limit)
            if data is None:
                break
            watch.since = busy
            await client.chunk(data)
            seen.sent += len(data)
            if feed is not None or window:
                block = bytes(data)
                if feed is not None:
                    feed(block)
                if window:
                    tail = block if len(block) >= window else seen.tail + block
                    seen.tail = tail[-window:]
        await client.finish()
    finally:
        for fd in (pipe_r, pipe_w):
            if fd >= 0:
                os.close(fd)


def _unseen(upstream: RawUpstream, window: int | None, skippable: Callable[[], int] | None) -> int:
    """How many of the next body bytes may be moved without being looked at."""
    possible = upstream.spliceable()
    if not possible:
        return 0
    if skippable is not None:
        return min(possible, skippable())
    if window is None:
        return possible
    remaining = upstream.remaining()
    if remaining is None:
        return 0  # the end is not known in advance: read it all for the close check
    return min(possible, max(0, remaining - window))
