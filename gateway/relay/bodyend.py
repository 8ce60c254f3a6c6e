"""How an upstream body ends: in order, cut, or not at all — told apart without the HTTP parser's
word for it.

* A Content-Length or chunked body that stops short is reported by aiohttp's parser
  (``ClientPayloadError``) once the connection closes; nothing to add.
* A close-delimited body (no Content-Length, not chunked: RFC 9112 §6.3 rule 8) ends when the
  connection does, and only an orderly close (FIN) ends it completely. aiohttp feeds such a
  body a clean end whichever way the connection went (``ResponseHandler.connection_lost``
  calls the parser's ``feed_eof`` for a reset as for a FIN); the exception it then leaves on
  the connection's protocol is what differs: ``ServerDisconnectedError`` after a FIN,
  ``ClientOSError`` (ECONNRESET…) after a reset. :func:`ended_in_order` reads that, from the
  protocol an :class:`~gateway.relay.upstream.UpstreamAnswer` kept.
* A body that stops arriving is ended by :class:`IdleWatchdog`, the gateway's own idle limit.
  aiohttp's ``sock_read`` timer is not enough: after a malformed chunk-size line its C parser
  drops the timer and never wakes the body's reader, even once the upstream has closed.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol

import aiohttp

from gateway.relay.upstream import UpstreamAnswer

__all__ = ["IdleWatchdog", "Interruptible", "UpstreamIdle", "close_delimited", "ended_in_order"]

_BODILESS = frozenset({204, 304})


class UpstreamIdle(TimeoutError):
    """The upstream sent nothing for ``read_idle_s`` while the relay waited for it."""


def close_delimited(answer: aiohttp.ClientResponse) -> bool:
    """Whether the body of ``answer`` ends only when the upstream closes the connection."""
    if answer.status < 200 or answer.status in _BODILESS:
        return False
    if "Content-Length" in answer.headers:
        return False
    codings = answer.headers.get("Transfer-Encoding", "")
    return codings.rsplit(",", 1)[-1].strip().lower() != "chunked"


def ended_in_order(answer: aiohttp.ClientResponse) -> bool:
    """Whether the connection of ``answer``, now lost, was closed in order (FIN).

    Only meaningful once a close-delimited body has ended. False whenever it cannot be told
    (an answer that kept no protocol): a body of uncertain end is never called complete.
    """
    protocol = answer.upstream_protocol if isinstance(answer, UpstreamAnswer) else None
    if protocol is None:
        return False
    return isinstance(protocol.exception(), aiohttp.ServerDisconnectedError)


class Interruptible(Protocol):
    """What the watchdog wakes: aiohttp's ``StreamReader``, or the raw relay's reader."""

    def set_exception(self, exc: BaseException) -> None: ...


class IdleWatchdog:
    """Ends the read of ``content`` once the relay has waited ``idle_s`` for the upstream.

    Contract with the copy loop: it sets :attr:`since` to :data:`BUSY` while it writes to the
    client (time the upstream is not being waited for) and to ``clock()`` when it turns to
    the upstream again. One timer per stream, re-armed only when it fires — at
    ``since + idle_s`` — so the loop pays one clock read and two stores per block, well
    under a microsecond. On expiry the reader gets :class:`UpstreamIdle`, which wakes it
    whatever state the HTTP parser is in; the stream then ends at most ``idle_s`` after
    the relay last turned to the upstream. :meth:`cancel` when the copy is over.
    """

    __slots__ = ("_content", "_handle", "_idle_s", "_loop", "clock", "since")

    BUSY = math.inf

    def __init__(self, content: Interruptible, idle_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._content = content
        self._idle_s = idle_s
        self.clock = time.monotonic  # a C call: the cheapest clock there is, per block
        self.since = self.clock()
        self._handle = self._loop.call_later(idle_s, self._check)

    def _check(self) -> None:
        now = self.clock()
        due = self.since + self._idle_s
        if due > now:  # the upstream delivered since (or the client is being written to)
            self._handle = self._loop.call_later(min(due - now, self._idle_s), self._check)
            return
        self._content.set_exception(UpstreamIdle(f"no data from the upstream for {self._idle_s} s"))

    def cancel(self) -> None:
        self._handle.cancel()
