"""Reading an upstream body under the gateway's own idle limit, for the consumer's loops.

The relay's copy loop (:mod:`gateway.relay.stream`) keeps its own, cheaper bookkeeping; the
manifest retrievals, which split and re-frame every part anyway, read through
:func:`body_chunks`. Each answer they read is multipart, so its end is checked by the
splitter's closing delimiter (RFC 2046), not by how the connection closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from gateway.relay.bodyend import IdleWatchdog

__all__ = ["body_chunks"]


async def body_chunks(content: aiohttp.StreamReader, idle_s: float) -> AsyncIterator[bytes]:
    """The blocks of ``content`` as they arrive, until its end.

    Raises :class:`~gateway.relay.bodyend.UpstreamIdle` (a ``TimeoutError``) once the upstream
    has sent nothing for ``idle_s`` while this reader waited for it — whatever state
    aiohttp's parser is in (after a malformed chunk-size line it would never wake the
    reader) — and the parser's own ``aiohttp.ClientPayloadError`` for a body cut short.
    Time the caller spends between blocks (writing to its client) does not count.
    """
    watch = IdleWatchdog(content, idle_s)
    try:
        while True:
            watch.since = watch.clock()
            chunk = await content.readany()
            if not chunk:
                return
            watch.since = IdleWatchdog.BUSY
            yield chunk
    finally:
        watch.cancel()
