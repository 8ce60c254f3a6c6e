"""The raw reader's framing (gateway.relay.rawcopy.RawUpstream): any body, in any framing, cut
into any pieces on the wire, reads back exactly — and a malformed or cut one raises.

Over a real socket pair; the writer sends the pieces with a yield between them, so the reader
meets every split of chunk-size lines, CRLFs and data.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.relay.rawcopy import Framing, RawUpstream


def chunked(body: bytes, sizes: list[int], extension: bytes = b"") -> bytes:
    out, position = bytearray(), 0
    for size in sizes:
        piece = body[position : position + size]
        if not piece:
            break
        out += b"%x%s\r\n" % (len(piece), extension) + piece + b"\r\n"
        position += len(piece)
    if position < len(body):
        out += b"%x\r\n" % (len(body) - position) + body[position:] + b"\r\n"
    return bytes(out + b"0\r\nTrailer: x\r\n\r\n")


def pieces(wire: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    return [wire[a:b] for a, b in itertools.pairwise(points)]


async def read_all(wire_pieces: list[bytes], framing: Framing, length: int | None,
                   held: int = 0, close: bool = True) -> bytes:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    first = b"".join(wire_pieces)[:held]
    rest = b"".join(wire_pieces)[held:]
    loop = asyncio.get_running_loop()

    async def write() -> None:
        for piece in pieces(rest, [len(p) for p in wire_pieces]):
            await loop.sock_sendall(theirs, piece)
            await asyncio.sleep(0)
        if close:
            theirs.close()

    writer = asyncio.create_task(write())
    upstream = RawUpstream(os.dup(ours.fileno()), first, framing, length)
    out = bytearray()
    try:
        while (data := await upstream.read()) is not None:
            out += data
    finally:
        upstream.close()
        ours.close()
        await writer
        if not close:
            theirs.close()
    return bytes(out)


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(min_size=0, max_size=3000),
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    held=st.integers(0, 50),
    extension=st.sampled_from([b"", b";a=b", b" ;x"]),
)
async def test_a_chunked_body_reads_back_exactly_however_it_is_cut(
    body: bytes, sizes: list[int], cuts: list[int], held: int, extension: bytes
) -> None:
    wire = chunked(body, sizes, extension)
    got = await read_all(pieces(wire, cuts), Framing.CHUNKED, None, held=min(held, len(wire)),
                         close=False)
    assert got == body


@settings(max_examples=30, deadline=None)
@given(body=st.binary(min_size=1, max_size=3000), cuts=st.lists(st.integers(0, 4000), max_size=8))
async def test_length_and_close_delimited_bodies_read_back_exactly(
    body: bytes, cuts: list[int]
) -> None:
    assert await read_all(pieces(body, cuts), Framing.LENGTH, len(body), close=False) == body
    assert await read_all(pieces(body, cuts), Framing.CLOSE, None) == body


@pytest.mark.parametrize(
    ("wire", "framing", "length"),
    [
        (b"5\r\nhel", Framing.CHUNKED, None),  # cut in a chunk
        (b"5\r\nhello\r\n", Framing.CHUNKED, None),  # no last chunk
        (b"5\r\nhelloXX0\r\n\r\n", Framing.CHUNKED, None),  # no CRLF after the data
        (b" 5\r\nhello\r\n0\r\n\r\n", Framing.CHUNKED, None),  # whitespace before the size
        (b"5;\x00\r\nhello\r\n0\r\n\r\n", Framing.CHUNKED, None),  # a control character
        (b"zz\r\n", Framing.CHUNKED, None),
        (b"1" * 16 + b"\r\n", Framing.CHUNKED, None),  # more than 15 hex digits
        (b"hello", Framing.LENGTH, 10),  # shorter than its Content-Length
    ],
)
async def test_a_malformed_or_cut_body_raises(wire: bytes, framing: Framing, length: int | None) -> None:
    with pytest.raises(aiohttp.ClientPayloadError):
        await read_all([wire], framing, length)
