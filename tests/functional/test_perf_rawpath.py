"""The pass-through copy below aiohttp (gateway.relay.takeover, gateway.relay.rawcopy) keeps
the stream phase's guarantees on bodies large enough for its kernel-side moves.

A multipart DICOM study of six 200 kB instances, each part with its Content-Length as Orthanc
sends them (so the part scanner passes over their pixels and the relay splices them unseen),
in each framing the relay takes over (Content-Length of more than 1 MiB, chunked,
close-delimited), cut at offsets in a part's head, in its skipped pixels, around the close
delimiter. The oracle is the fault matrix's (test_fault_matrix.py): a message HTTP calls
complete that holds its close delimiter reaches the client byte for byte with a proper end
and every instance noted; anything else is aborted, having delivered only a prefix. Also:
answers held at the end of their head read the ordinary way when released (a head split
byte by byte, a 103 before the 200, a 404's body), and a client that leaves mid-splice ends
the exchange without harm to the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from gateway.relay.takeover import WANT_RAW, SplitHandler
from gateway.relay.upstream import UpstreamPool
from peers.faults import BOUNDARY, MULTIPART, Fault, FaultUpstream, Framing, Script
from peers.studies import make_study
from routing.loader import parse_config
from routing.model import Upstream
from routing.registry import Registry
from tests.functional.inprocess import running_gateway
from tests.functional.received import receive

IDLE_S = 1.0
PARTS = 6


def study() -> bytes:
    """Six CT instances of about 200 kB, each part with its Content-Length."""
    made = make_study(seed="rawpath", series_count=1, instances_per_series=PARTS, rows=256,
                      columns=400)
    out = bytearray()
    for instance in made.instances:
        head = (
            f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n"
            f"Content-Length: {len(instance.part10)}\r\n\r\n"
        )
        out += head.encode() + instance.part10 + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


BODY = study()
CLOSE_END = len(BODY) - 2  # "--boundary--", then its CRLF
FIRST_PART_PIXELS = 60_000  # well inside the first part's skipped pixel data


def cases() -> Iterator[tuple[Framing, Fault, int]]:
    offsets = [0, 300, FIRST_PART_PIXELS, len(BODY) // 2, CLOSE_END - 1, CLOSE_END, len(BODY) - 1]
    yield "length", "none", len(BODY)
    yield "chunked", "none", len(BODY)
    yield "close", "none", len(BODY)
    for offset in offsets:
        yield "length", "close", offset
        yield "chunked", "reset", offset
        yield "chunked", "last-chunk", offset
        yield "close", "close", offset
        yield "close", "reset", offset
    yield "chunked", "bad-chunk-close", FIRST_PART_PIXELS
    yield "length", "stall", FIRST_PART_PIXELS


def message(framing: Framing, fault: Fault, offset: int) -> bytes | None:
    """The upstream's message if HTTP calls it complete (RFC 9112 §6.3), else None."""
    if fault == "none" or (framing == "length" and offset >= len(BODY)):
        return BODY
    if (framing, fault) in (("chunked", "last-chunk"), ("close", "close")):
        return BODY[:offset]
    return None


async def test_a_large_study_in_every_framing_is_complete_or_aborted_never_wrong(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mado_gateway.access")
    async with (
        FaultUpstream(stall_s=IDLE_S + 3) as up,
        running_gateway({"scripted": [up.base_url + "scripted/"]}, read_idle_s=IDLE_S) as gw,
    ):
        for n, (framing, fault, offset) in enumerate(cases(), start=1):
            sop = f"1.2.826.0.1.3680043.10.99.{n}"
            up.scripts[sop] = Script(
                headers={"Content-Type": MULTIPART},
                body=BODY,
                framing=framing,
                fault=fault,
                offset=offset,
                chunk=100_000,
            )
            caplog.clear()
            got = await receive(gw.url("scripted", f"studies/{sop}"), deadline_s=IDLE_S + 8)
            case = f"{framing}/{fault}@{offset}"
            expected = message(framing, fault, offset)
            assert got.status == 200, case
            # the close delimiter, then nothing or a CRLF (RFC 2046 §5.1.1)
            if expected is not None and len(expected) in (CLOSE_END, CLOSE_END + 2):
                assert got.ending == "complete", case
                assert got.body == expected, case
                exchange = next(r for r in caplog.records if r.getMessage() == "exchange")
                assert exchange.__dict__["instances"] == PARTS, case
            else:
                assert got.ending == "aborted", case
                assert BODY.startswith(got.body), case
                assert got.wait_s < IDLE_S + 1.5, case


async def test_a_client_that_leaves_mid_splice_does_not_harm_the_next_exchange() -> None:
    async with (
        FaultUpstream() as up,
        running_gateway({"scripted": [up.base_url + "scripted/"]}, read_idle_s=IDLE_S) as gw,
    ):
        for sop in ("1.2.1", "1.2.2"):
            up.scripts[sop] = Script(
                headers={"Content-Type": MULTIPART}, body=BODY, framing="chunked", chunk=100_000
            )
        async with (
            aiohttp.ClientSession() as session,
            session.get(gw.url("scripted", "studies/1.2.1")) as answer,
        ):
            assert len(await answer.content.readexactly(300_000)) == 300_000
        # left: the session closed the connection mid-body
        got = await receive(gw.url("scripted", "studies/1.2.2"), deadline_s=IDLE_S + 8)
        assert got.ending == "complete"
        assert got.body == BODY


class _Scripted:
    """A raw upstream that sends one prepared answer per request, in given pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for piece in self.pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.close()


def _pool_upstream(url: str) -> Upstream:
    config = parse_config(
        {
            "self": {"home_community_id": "1.2", "audit_source_id": "t"},
            "upstreams": {"up": {"protocol": "wado-rs", "base_urls": [url]}},
            "sources": {"1.2.3": "up"},
            "address_policy": {"allow_loopback": True},
        }
    )
    return Registry(config).config.upstreams["up"]


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param(
            [bytes([b]) for b in b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
            + [b"b\r\nhello world\r\n0\r\n\r\n"],
            id="head-byte-by-byte",
        ),
        pytest.param(
            [b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n",
             b"Connection: close\r\n\r\nhello", b" world"],
            id="103-first-close-delimited",
        ),
        pytest.param(
            [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
             b"6\r\n world\r\n0\r\n\r\n"],
            id="chunked",
        ),
    ],
)
async def test_an_answer_held_at_its_head_reads_the_same_when_released(pieces: list[bytes]) -> None:
    async with _Scripted(pieces) as url, _relay_get(url) as (answer, protocol):
        assert protocol.holding
        assert answer.status == 200
        protocol.release()
        assert await answer.read() == b"hello world"


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param([b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n", b"not found"],
                     id="404"),
        pytest.param([b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot", b" found"],
                     id="short-content-length"),
    ],
)
async def test_an_answer_not_to_take_over_is_never_held(pieces: list[bytes]) -> None:
    async with _Scripted(pieces) as url, _relay_get(url) as (answer, protocol):
        assert not protocol.holding
        assert await answer.read() == b"not found"  # no release needed


@contextlib.asynccontextmanager
async def _relay_get(url: str) -> AsyncIterator[tuple[aiohttp.ClientResponse, SplitHandler]]:
    """GET ``url`` + ``x`` from a pool as the relay asks (``WANT_RAW`` set): the open answer
    and the protocol that read its head."""
    pool = UpstreamPool(read_bufsize=65536)
    try:
        with pool.lease(_pool_upstream(url)) as session:
            token = WANT_RAW.set(True)
            try:
                answer = await session.get(url + "x")
            finally:
                WANT_RAW.reset(token)
            async with answer:
                protocol = answer.connection.protocol if answer.connection else None
                assert isinstance(protocol, SplitHandler)
                yield answer, protocol
    finally:
        await pool.close()
