"""What a client makes of an answer: complete, aborted, or still hanging after a deadline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

__all__ = ["Received", "receive"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    status: int
    content_type: str
    body: bytes
    ending: str  # "complete" (a proper end), "aborted" (a broken transfer), "hung" or
    # "malformed" (the client's HTTP parser refused the head: no status to speak of)
    wait_s: float  # from the last byte received (or the headers) to the end or abort

    @property
    def complete(self) -> bool:
        return self.ending == "complete"


async def receive(url: str, *, deadline_s: float, **headers: str) -> Received:
    """GET ``url`` and read the whole body; ``hung`` when it neither ends nor aborts in time.

    A proper end is what the client's HTTP parser accepts as the end of the message (the
    terminating chunk of a chunked answer); anything else the parser reports is an abort.
    """
    loop = asyncio.get_running_loop()
    body = bytearray()
    status, content_type, ending = 0, "", "hung"
    last = loop.time()
    try:
        async with (
            asyncio.timeout(deadline_s),
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.get(url, headers=headers) as answer,
        ):
            status = answer.status
            content_type = answer.headers.get("Content-Type", "")
            last = loop.time()
            try:
                while chunk := await answer.content.readany():
                    body += chunk
                    last = loop.time()
                ending = "complete"
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                ending = "aborted"
    except TimeoutError:
        ending = "hung"
    except aiohttp.ClientResponseError:  # raised only while reading the head
        ending = "malformed"
    except aiohttp.ClientConnectionError:  # no head at all
        ending = "aborted"
    return Received(
        status=status,
        content_type=content_type,
        body=bytes(body),
        ending=ending,
        wait_s=loop.time() - last,
    )
