"""A SOAP answer's documents re-framed as one DICOMweb multipart answer, over a real loopback
socket (gateway.protocols.xca.reframe, and gateway.protocols.xca.fromweb's answer: status
before the first byte, seal before the closing delimiter, abort on a cut part).
xcai-digest.md §6.4 item 3; items 33 and 34."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.exchange import Exchange, Leg, Outcome
from gateway.protocols.xca import fromweb
from gateway.protocols.xca.fromweb import Sent
from gateway.protocols.xca.model import DocumentResponse, Status
from gateway.protocols.xca.outcomes import PARTIAL_WARNING
from gateway.protocols.xca.plan import Carrier, Group
from gateway.protocols.xca.reframe import (
    HEAD_BYTES,
    dicom_part_type,
    multipart_type,
    write_documents,
)
from gateway.protocols.xca.results import GroupAnswer, Part, PartFailed
from gateway.relay.handover import Relay
from gateway.relay.multipart import part_head
from peers.multipart import split_multipart
from peers.studies import SyntheticInstance, compress_rle, make_study
from routing.ids import HomeCommunityId
from routing.upstream import Protocol, Upstream

EXPLICIT = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"
STUDY = make_study(seed="reframe", series_count=1, instances_per_series=4, rows=16, columns=16)
UPSTREAM = Upstream(name="community-c", protocol=Protocol.RAD_75, base_urls=("http://c/x",))
REPO = "1.2.3.200"


def document(
    instance: SyntheticInstance, content_id: str | None, inline: bytes | None = None
) -> DocumentResponse:
    return DocumentResponse(
        home_community_id="urn:oid:1.2.3",
        repository_id=REPO,
        document_uid=instance.sop_instance_uid,
        content_id=content_id,
        inline=inline,
    )


async def chunks_of(data: bytes, size: int, *, cut_after: int | None = None) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        if cut_after is not None and start >= cut_after:
            raise PartFailed("truncated")
        await asyncio.sleep(0)
        yield data[start : start + size]


async def parts_of(*parts: Part) -> AsyncIterator[Part]:
    for part in parts:
        yield part


@dataclass
class Recorder:
    """The telemetry a relay is handed, recording the order of what it is told."""

    events: list[str] = field(default_factory=list)

    def answered(self, exchange: Exchange, leg: Leg) -> None:
        self.events.append("answered")
        leg.first_byte_s = exchange.elapsed()

    def seal(self, exchange: Exchange) -> None:
        self.events.append(f"seal:{exchange.outcome.value}")
        exchange.sealed = True


async def serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> tuple[TestServer, str]:
    app = web.Application()
    app.router.add_get("/", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, str(server.make_url("/"))


async def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return answer.status, dict(answer.headers), await answer.read()


@pytest.mark.xcai(34)
async def test_each_document_is_one_dicom_part_with_its_own_transfer_syntax() -> None:
    plain, rle, inline, edgy = STUDY.instances[0], compress_rle(STUDY.instances[1]), *STUDY.instances[2:]
    edgy_bytes = edgy.part10 + b"\r\n\r\n--"  # CR/LF and dashes at the part's edge stay
    documents = [
        document(plain, "a"),
        document(rle, "b"),
        document(inline, None, inline=inline.part10),
        document(edgy, "c"),
    ]
    parts = parts_of(
        Part("b", chunks_of(rle.part10, 7)),
        Part("stray", chunks_of(b"not asked for", 3)),  # named by no document: skipped
        Part("c", chunks_of(edgy_bytes, 4096)),
        Part("a", chunks_of(plain.part10, 65536)),
    )
    exchange = Exchange(request_id="r", method="GET", path="/", client=None)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.headers["Content-Type"] = multipart_type("b0und4ry")
        await response.prepare(request)
        written = await write_documents(documents, parts, response.write, "b0und4ry", exchange)
        assert written == 4
        await response.write(b"\r\n--b0und4ry--\r\n")
        return response

    server, url = await serve(handler)
    try:
        status, headers, body = await fetch(url)
    finally:
        await server.close()
    assert status == 200
    got = split_multipart(body, headers["Content-Type"])
    assert [p.headers["content-type"] for p in got] == [
        f"application/dicom; transfer-syntax={EXPLICIT}",  # the inline document first
        f"application/dicom; transfer-syntax={RLE}",
        f"application/dicom; transfer-syntax={EXPLICIT}",
        f"application/dicom; transfer-syntax={EXPLICIT}",
    ]
    digest = [hashlib.sha256(p.body).hexdigest() for p in got]
    assert digest == [
        hashlib.sha256(data).hexdigest()
        for data in (inline.part10, rle.part10, edgy_bytes, plain.part10)
    ]
    assert len(exchange.instances) == 4  # each part's identity read from its header
    assert exchange.bytes_sent == sum(len(p.body) for p in got)


@pytest.mark.xcai(34)
async def test_a_named_part_that_never_comes_fails_the_answer() -> None:
    documents = [document(STUDY.instances[0], "a"), document(STUDY.instances[1], "b")]
    exchange = Exchange(request_id="r", method="GET", path="/", client=None)
    written: list[bytes] = []

    async def write(data: bytes) -> None:
        written.append(data)

    parts = parts_of(Part("a", chunks_of(STUDY.instances[0].part10, 1000)))
    with pytest.raises(PartFailed) as failed:
        await write_documents(documents, parts, write, "b", exchange)
    assert failed.value.reason == "unresolved"


@pytest.mark.xcai(34)
def test_a_part_type_never_carries_what_is_not_a_uid() -> None:
    assert dicom_part_type(None) == "application/dicom"
    assert dicom_part_type("1.2\r\nX-Injected: 1") == "application/dicom"
    assert dicom_part_type(RLE) == f"application/dicom; transfer-syntax={RLE}"


@pytest.mark.xcai(34)
@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=4096),
    which=st.sampled_from(("plain", "rle", "not-dicom", "tiny")),
)
def test_any_chunking_gives_the_same_part(size: int, which: str) -> None:
    data = {
        "plain": STUDY.instances[0].part10,
        "rle": compress_rle(STUDY.instances[0]).part10,
        "not-dicom": b"\r\n" + bytes(range(256)) * (HEAD_BYTES // 128),
        "tiny": STUDY.instances[0].part10[:200],  # ends inside its File Meta group
    }[which]
    syntax = {"plain": EXPLICIT, "rle": RLE}.get(which)
    exchange = Exchange(request_id="r", method="GET", path="/", client=None)
    out = bytearray()

    async def write(chunk: bytes) -> None:
        out.extend(chunk)

    async def run() -> None:
        parts = parts_of(Part("a", chunks_of(data, size)))
        await write_documents([document(STUDY.instances[0], "a")], parts, write, "B", exchange)

    asyncio.run(run())
    head = part_head("B", {"Content-Type": dicom_part_type(syntax)})
    assert bytes(out) == head + data
    assert exchange.bytes_sent == len(data)


def sent(
    documents: Sequence[DocumentResponse], parts: AsyncIterator[Part]
) -> tuple[Group, GroupAnswer]:
    group = Group(
        upstream=UPSTREAM,
        carrier=Carrier.RAD_75,
        home_community_id=HomeCommunityId("1.2.3"),
        documents=(),
    )
    return group, GroupAnswer(upstream=UPSTREAM.name, documents=tuple(documents), parts=parts)


async def answer_over_socket(
    documents: Sequence[DocumentResponse], parts: AsyncIterator[Part], status: Status
) -> tuple[Exchange, Recorder, int, dict[str, str], bytes | Exception]:
    exchange = Exchange(request_id="r", method="GET", path="/", client=None)
    leg = exchange.open_leg(UPSTREAM.name)
    telemetry = Recorder()
    relay = Relay(pool=None, registry=None, telemetry=telemetry)  # type: ignore[arg-type]
    group, answer = sent(documents, parts)
    bridged = Sent(group=group, answer=answer, leg=leg, documents=tuple(documents), status=status)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = await fromweb._answer(request, exchange, bridged, relay=relay)
        telemetry.events.append("returned")
        return response

    server, url = await serve(handler)
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            telemetry.events.append(f"status:{response.status}")
            try:
                body: bytes | Exception = await response.read()
            except aiohttp.ClientPayloadError as exc:
                body = exc
            return exchange, telemetry, response.status, dict(response.headers), body
    finally:
        await server.close()


@pytest.mark.xcai(33)
async def test_partial_success_is_206_with_a_warning_sealed_before_the_end() -> None:
    instance = STUDY.instances[0]
    exchange, telemetry, status, headers, body = await answer_over_socket(
        [document(instance, "a")],
        parts_of(Part("a", chunks_of(instance.part10, 1000))),
        Status.PARTIAL_SUCCESS,
    )
    assert status == 206 and headers["Warning"] == PARTIAL_WARNING
    assert isinstance(body, bytes)
    (part,) = split_multipart(body, headers["Content-Type"])
    assert part.body == instance.part10
    # announced before the first byte; recorded before the closing delimiter was written
    assert telemetry.events[0] == "answered"
    assert telemetry.events.index("seal:complete") < telemetry.events.index("returned")
    assert exchange.outcome is Outcome.COMPLETE and exchange.status == 206


@pytest.mark.xcai(33, 34)
async def test_a_part_cut_after_the_first_byte_aborts_the_connection() -> None:
    first, second = STUDY.instances[0], STUDY.instances[1]
    exchange, telemetry, status, _, body = await answer_over_socket(
        [document(first, "a"), document(second, "b")],
        parts_of(
            Part("a", chunks_of(first.part10, 512)),
            Part("b", chunks_of(second.part10, 512, cut_after=1024)),
        ),
        Status.SUCCESS,
    )
    assert status == 200  # chosen before the first byte
    assert isinstance(body, aiohttp.ClientPayloadError)  # no closing delimiter, no last chunk
    assert exchange.outcome is Outcome.ABORTED and exchange.error == "truncated"
    assert not any(event.startswith("seal") for event in telemetry.events)
