"""The MTOM writer over a real loopback socket (:func:`send_answer`; digest §6.2, §6.6;
items 1, 7, 12, 13, 15): parts renamed and byte-exact, the exchange sealed before the closing
delimiter, and a failure after the envelope — a part that breaks, a group whose parts end
early, a client that leaves — ending the connection without one.

The groups are made here (async generators): what is tested is the writer, whatever fetched
the parts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.exchange import Exchange, Leg, Outcome
from gateway.protocols.xca.answer import Stream, send_answer
from gateway.protocols.xca.envelope import build_response
from gateway.protocols.xca.model import Action, Addressing, DocumentResponse, RetrieveResponse
from gateway.protocols.xca.mtom import MtomWriter
from gateway.protocols.xca.results import GroupAnswer, Part, PartFailed
from tests.functional.soapclient import SUCCESS, content_type_params, parse_answer

FIRST = b"\r\n" + bytes(range(256)) * 300 + b"\r\n"
SECOND = b"\n--" + b"\x00" * 70_000 + b"\r"


@dataclass
class Telemetry:
    """Records the legs announced, and how many body bytes had gone out at the seal."""

    legs: list[Leg] = field(default_factory=list)
    sealed_at: int | None = None

    def answered(self, exchange: Exchange, leg: Leg) -> None:
        self.legs.append(leg)

    def seal(self, exchange: Exchange) -> None:
        self.sealed_at = exchange.bytes_sent


async def _chunks(data: bytes, *, fail_at: int | None = None, pause_s: float = 0) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 8192):
        if fail_at is not None and start >= fail_at:
            raise PartFailed("truncated")
        if pause_s:
            await asyncio.sleep(pause_s)
        yield data[start : start + 8192]


Parts = Callable[[], AsyncIterator[Part]]


@dataclass
class Served:
    url: str
    exchange: Exchange
    telemetry: Telemetry
    closed: asyncio.Event
    done: asyncio.Event


Start = Callable[[Parts], Awaitable["Served"]]


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    servers: list[TestServer] = []

    async def start(parts: Parts) -> Served:
        exchange = Exchange(request_id="r", method="POST", path="/xcai", client=None)
        record = Telemetry()
        closed, done = asyncio.Event(), asyncio.Event()
        leg = exchange.open_leg("ids")

        async def close() -> None:
            closed.set()

        async def handler(request: web.Request) -> web.StreamResponse:
            writer = MtomWriter()
            documents = (
                DocumentResponse(
                    home_community_id="urn:oid:1.2",
                    repository_id="1.2.3",
                    document_uid=f"1.2.3.{n}",
                    content_id=writer.new_content_id(n),
                )
                for n in range(2)
            )
            envelope = build_response(
                Addressing(action=Action.RAD_75.response, relates_to="urn:uuid:1"),
                RetrieveResponse(status=SUCCESS, documents=tuple(documents)),
            )
            answer = GroupAnswer(upstream="ids", parts=parts(), close=close)
            renames = {"a": writer.new_content_id(0), "b": writer.new_content_id(1)}
            try:
                return await send_answer(
                    request,
                    exchange,
                    telemetry=record,
                    writer=writer,
                    envelope=envelope,
                    streams=[Stream(answer=answer, renames=renames, leg=leg)],
                )
            finally:
                await answer.close()
                done.set()

        app = web.Application()
        app.router.add_post("/xcai", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Served(str(server.make_url("/xcai")), exchange, record, closed, done)

    yield start
    for server in servers:
        await server.close()


@pytest.mark.xcai(1, 7, 12, 13)
async def test_parts_go_out_renamed_and_unchanged_and_the_seal_precedes_the_last_delimiter(
    serve: Start,
) -> None:
    async def parts() -> AsyncIterator[Part]:
        yield Part(content_id="stray", chunks=_chunks(b"nobody's"))  # skipped
        yield Part(content_id="b", chunks=_chunks(SECOND))
        yield Part(content_id="a", chunks=_chunks(FIRST))

    served = await serve(parts)
    async with aiohttp.ClientSession() as session, session.post(served.url) as response:
        body = await response.read()
        content_type = response.headers["Content-Type"]
        answer = parse_answer(response.status, content_type, body)
    assert answer.status == SUCCESS and answer.closing_delimiter and answer.root_index == 0
    assert [d.content for d in answer.documents] == [FIRST, SECOND]
    assert not answer.unreferenced_parts and not answer.unresolved_cids
    await served.done.wait()
    assert served.exchange.outcome is Outcome.COMPLETE
    assert served.telemetry.legs == served.exchange.legs  # before the first byte
    boundary = content_type_params(content_type)[1]["boundary"]
    closing = MtomWriter(boundary=boundary).closing()
    assert body.endswith(closing)
    assert served.telemetry.sealed_at == len(body) - len(closing)  # sealed, then the end
    assert served.closed.is_set()


@pytest.mark.xcai(15)
@pytest.mark.parametrize("failure", ["part breaks", "parts end early"])
async def test_a_failure_after_the_envelope_aborts_without_a_closing_delimiter(
    serve: Start, failure: str
) -> None:
    async def parts() -> AsyncIterator[Part]:
        yield Part(content_id="a", chunks=_chunks(FIRST))
        if failure == "part breaks":
            yield Part(content_id="b", chunks=_chunks(SECOND, fail_at=40_000))

    served = await serve(parts)
    async with aiohttp.ClientSession() as session, session.post(served.url) as response:
        assert response.status == 200  # the envelope had promised both documents
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    await served.done.wait()
    assert served.exchange.outcome is Outcome.ABORTED
    assert served.exchange.error == ("truncated" if failure == "part breaks" else "unresolved")
    assert served.telemetry.sealed_at is None  # the edge seals it, as aborted
    assert served.closed.is_set()


@pytest.mark.xcai(15)
async def test_a_client_that_leaves_ends_the_answer_and_its_groups_are_closed(
    serve: Start,
) -> None:
    endless = b"\x00" * 50_000_000

    async def parts() -> AsyncIterator[Part]:
        yield Part(content_id="a", chunks=_chunks(endless))

    served = await serve(parts)
    async with aiohttp.ClientSession() as session, session.post(served.url) as response:
        await response.content.readexactly(100_000)
    # The server runs handlers as aiohttp does in production (handler_cancellation): the
    # handler is cancelled when the connection is lost, or its next write fails.
    await asyncio.wait_for(served.done.wait(), 10)
    assert served.exchange.outcome is Outcome.ABORTED
    assert served.exchange.error == "client"
    assert served.exchange.bytes_sent < len(endless)
    assert served.closed.is_set()
