"""The descriptor side of the raw relay (:mod:`gateway.relay.rawcopy`): waiting for a socket
to be readable or writable, the client's connection written in chunks, and the pipe that
``splice(2)`` moves unseen bytes through.

The relay works on duplicates of the connections' descriptors, registered with the event
loop only while it waits on them (the transports that own the originals are paused or idle).
:class:`Readiness` is also what the idle watchdog wakes (:meth:`Readiness.set_exception`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
from collections.abc import Callable

__all__ = ["HAVE_SPLICE", "PIPE_BYTES", "SPLICE_FLAGS", "RawClient", "Readiness", "make_pipe"]

PIPE_BYTES = 1024 * 1024
HAVE_SPLICE = hasattr(os, "splice")
SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# plain ints: socket.MSG_* are IntFlag members, whose "|" costs a Python call per send
_SEND = int(socket.MSG_NOSIGNAL)
_SEND_MORE = int(socket.MSG_NOSIGNAL | socket.MSG_MORE)


class Readiness:
    """Readiness of one descriptor, and the exception the idle watchdog may set on it."""

    __slots__ = ("_exc", "_future", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[None] | None = None
        self._exc: BaseException | None = None

    def set_exception(self, exc: BaseException) -> None:
        self._exc = exc
        future = self._future
        if future is not None and not future.done():
            future.set_exception(exc)

    def check(self) -> None:
        if self._exc is not None:
            raise self._exc

    async def readable(self, fd: int) -> None:
        await self._wait(fd, self._loop.add_reader, self._loop.remove_reader)

    async def writable(self, fd: int) -> None:
        await self._wait(fd, self._loop.add_writer, self._loop.remove_writer)

    async def _wait(
        self,
        fd: int,
        add: Callable[..., object],
        remove: Callable[[int], object],
    ) -> None:
        self.check()
        future = self._future = self._loop.create_future()
        add(fd, _wake, future)
        try:
            await future
        finally:
            remove(fd)
            self._future = None


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class RawClient:
    """The client's connection (a duplicate of its descriptor), written in chunks.

    Each chunk's closing CRLF is sent with the next chunk's header; :meth:`finish` sends the
    last one, after which the caller writes the terminating chunk the ordinary way.
    """

    def __init__(self, fd: int) -> None:
        """``fd``: the client connection's descriptor (duplicated here, closed by
        :meth:`close`)."""
        self._sock = socket.socket(fileno=os.dup(fd))
        self._sock.setblocking(False)
        self.fd = self._sock.fileno()
        self._waiter = Readiness(asyncio.get_running_loop())
        self._crlf = b""

    def close(self) -> None:
        self._sock.close()

    async def chunk(self, data: memoryview) -> None:
        await self._send([b"%s%x\r\n" % (self._crlf, len(data)), data], _SEND)
        self._crlf = b"\r\n"

    async def chunk_from(self, pipe: int, size: int) -> None:
        """A chunk of the ``size`` bytes waiting in ``pipe``."""
        await self._send([b"%s%x\r\n" % (self._crlf, size)], _SEND_MORE)
        self._crlf = b"\r\n"
        while size:
            try:
                size -= os.splice(pipe, self.fd, size, flags=SPLICE_FLAGS)
            except BlockingIOError:
                await self._waiter.writable(self.fd)
            except (BrokenPipeError, ConnectionError) as exc:
                raise ConnectionResetError("the client went away") from exc

    async def finish(self) -> None:
        if self._crlf:
            await self._send([self._crlf], _SEND)
            self._crlf = b""

    async def _send(self, parts: list[bytes | memoryview], flags: int) -> None:
        while parts:
            try:
                sent = self._sock.sendmsg(parts, [], flags)
            except BlockingIOError:
                await self._waiter.writable(self.fd)
                continue
            except (BrokenPipeError, ConnectionError) as exc:
                raise ConnectionResetError("the client went away") from exc
            while parts and sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.pop(0)
            if parts and sent:
                parts[0] = memoryview(parts[0])[sent:]



def make_pipe() -> tuple[int, int]:
    """A non-blocking pipe (read end, write end) of :data:`PIPE_BYTES` where the system
    allows it."""
    read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # a smaller pipe only means more, smaller splices
        fcntl.fcntl(write, _F_SETPIPE_SZ, PIPE_BYTES)
    return read, write
