"""Taking an upstream connection over from aiohttp once an answer's head has been read, so that
its body can be relayed below aiohttp's per-chunk copies (:mod:`gateway.relay.rawcopy`).

Every upstream connection's protocol is a :class:`SplitHandler` (installed on each session's
connector by :func:`install`). A request sent while :data:`WANT_RAW` is true — the relay sets
it around a GET it may pass through (:func:`~gateway.relay.forward.forward`) — arms the
handler, on plain-TCP connections only. Armed, the handler hands aiohttp's parser the bytes up
to the end of the answer's head (informational 1xx heads pass through whole); when the answer
is one the relay could take (a 2xx whose body is chunked, close-delimited or at least
:data:`RAW_MIN_LENGTH` long) it keeps the bytes that follow (at most one socket read: reading
stops there) and holds the connection; any other answer reads on without a pause. Then:

* :meth:`SplitHandler.take` — the relay takes the kept bytes and reads the socket itself;
  aiohttp's parser never sees the body. After a chunked body read to its end the connection
  goes back to the pool (:meth:`SplitHandler.give_back`); otherwise it is closed when the
  answer is released (its body never reached the parser: aiohttp closes such a connection).
* :meth:`SplitHandler.release` — the kept bytes go to the parser and reading resumes: the
  answer is read the ordinary way, as if nothing had happened. Every answer that is not a
  2xx to an armed GET is released as soon as its head is read
  (:class:`~gateway.relay.upstream.UpstreamAnswer`), so no other reader ever waits on a held
  connection.

Relies on aiohttp's connector building protocols through its ``_factory`` attribute; where it
does not, :func:`install` changes nothing and every answer is read the ordinary way.
"""

from __future__ import annotations

import asyncio
import functools
import os
from contextvars import ContextVar
from typing import cast

import aiohttp
from aiohttp.client_proto import ResponseHandler

__all__ = ["RAW_MIN_LENGTH", "WANT_RAW", "SplitHandler", "SplitRequest", "install"]

WANT_RAW: ContextVar[bool] = ContextVar("mado_gateway_want_raw", default=False)
"""True while the relay sends a request whose answer it may read below aiohttp."""

_HEAD_END = b"\r\n\r\n"

RAW_MIN_LENGTH = 1024 * 1024
"""A body with a smaller Content-Length is read the ordinary way: taken over, its connection
could not go back to the pool (only a chunked body's end can be handed back to aiohttp)."""


class SplitHandler(ResponseHandler):
    """aiohttp's client protocol, able to stop at the end of an answer's head (see module)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._armed = False
        self._head_start = b""  # the first bytes of the head being read (is it a 1xx?)
        self._carry = b""  # the last bytes of the previous read: a head end may straddle
        self._held: bytearray | None = None

    @property
    def holding(self) -> bool:
        """An answer's head has been read and its body bytes are kept, not parsed."""
        return self._held is not None

    def arm(self) -> None:
        """Stop at the end of the next final answer's head (call before sending a request)."""
        self._armed, self._head_start, self._carry = True, b"", b""

    def data_received(self, data: bytes) -> None:
        if self._held is not None:  # reading should be paused; keep whatever came anyway
            self._held += data
            self._hold()
            return
        if not self._armed:  # aiohttp also calls this with b"" to resume a paused parser
            super().data_received(data)
            return
        while self._armed and data:
            if len(self._head_start) < 12:
                self._head_start += data[: 12 - len(self._head_start)]
            window = self._carry + data
            found = window.find(_HEAD_END)
            if found < 0:
                self._carry = window[-3:]
                break
            end = found + len(_HEAD_END) - len(self._carry)
            head, data = data[:end], data[end:]
            informational = self._head_start[:5] == b"HTTP/" and self._head_start[9:10] == b"1"
            self._head_start, self._carry = b"", b""
            super().data_received(head)
            if not informational:
                self._armed = False
                if self._worth_holding():
                    self._held = bytearray(data)
                    self._hold()
                    return
                break
        if data:
            super().data_received(data)

    def _worth_holding(self) -> bool:
        """Whether the answer whose head the parser just read could be taken over: a 2xx
        whose body is chunked, close-delimited or at least :data:`RAW_MIN_LENGTH` long.
        Any other is read the ordinary way without a pause. (Read from the message aiohttp
        queued; when it cannot be read, hold: the relay decides again.)"""
        try:
            message = self._buffer[-1][0][0]
            code, chunked, length = message.code, message.chunked, message.headers.get(
                "Content-Length"
            )
        except (AttributeError, IndexError, TypeError):
            return True
        if not 200 <= code < 300 or code == 204:
            return False
        if chunked or length is None:
            return True
        return length.isdigit() and int(length) >= RAW_MIN_LENGTH

    def take(self) -> tuple[bytes, int]:
        """The kept body bytes and a duplicate of the socket's descriptor (the caller closes
        it). The transport stays paused: nothing but the caller reads the socket now."""
        assert self._held is not None
        assert self.transport is not None
        held, self._held = bytes(self._held), bytearray()
        sock = self.transport.get_extra_info("socket")
        return held, os.dup(sock.fileno())

    def release(self) -> None:
        """Read the held answer the ordinary way (no-op when nothing is held)."""
        held, self._held = self._held, None
        self._armed = False
        if held is None:
            return
        if held:
            super().data_received(bytes(held))
        self._resume()

    def give_back(self) -> None:
        """A taken chunked body was read to its last chunk: let the parser see it end, so
        the connection goes back to the pool and reading resumes for the next answer."""
        self._held = None
        super().data_received(b"0\r\n\r\n")
        self._resume()

    def _hold(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()
        self._drop_timeout()  # our reader keeps its own idle limit

    def _resume(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not (self._reading_paused or getattr(self, "_buffer_paused", False)):
            transport.resume_reading()
        self._reschedule_timeout()


class SplitRequest(aiohttp.ClientRequest):
    """Arms the connection's :class:`SplitHandler` for a GET sent while :data:`WANT_RAW`."""

    async def send(self, conn: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
        protocol = conn.protocol
        if (
            WANT_RAW.get()
            and self.method == "GET"
            and isinstance(protocol, SplitHandler)
            and protocol.transport is not None
            and protocol.transport.get_extra_info("sslcontext") is None
        ):
            protocol.arm()
        return await super().send(conn)


def install(connector: aiohttp.TCPConnector) -> None:
    """Make ``connector`` build :class:`SplitHandler` protocols (see the module docstring)."""
    if hasattr(connector, "_factory"):
        factory = functools.partial(SplitHandler, loop=asyncio.get_running_loop())
        connector._factory = cast("functools.partial[ResponseHandler]", factory)
