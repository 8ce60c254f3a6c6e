"""What the tests of :func:`gateway.protocols.xca.client.call` and ``spill`` share: a canned
SOAP peer on a real loopback socket, and the gateway's side of one group (registry, relay,
exchange, spool) wired as a handler would wire it.

:class:`CannedPeer` is a fake on purpose and only for what a real peer cannot be made to do
on demand (design.md §9 rule 10): parts before the root, base64 transfer encoding, a missing
closing delimiter, an unresolved cid, a SOAP Fault, a stall, a cut mid-part, a
DocumentResponse without homeCommunityId, an Imaging Document Source writing dcm4chee's
error codes, parts whose bytes start and end with CR LF. The happy paths through real
gateway processes are in ``tests/functional/test_xcai_relay.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from multidict import CIMultiDictProxy

from gateway.exchange import Exchange, Leg
from gateway.protocols.xca.client import call
from gateway.protocols.xca.fetching import Fetching
from gateway.protocols.xca.model import DocumentRequest, RetrieveRequest
from gateway.protocols.xca.plan import Role, plan
from gateway.protocols.xca.results import GroupAnswer
from gateway.protocols.xca.spool import Spool, SpoolBudget
from gateway.relay.handover import Relay
from gateway.relay.upstream import UpstreamPool
from gateway.settings import XcaSettings
from routing.ids import HomeCommunityId
from routing.loader import parse_config
from routing.registry import Registry
from tests.functional.soapclient import EXPLICIT_LE

__all__ = [
    "OWN",
    "REMOTE",
    "REPOSITORY",
    "CannedPeer",
    "Handler",
    "Side",
    "canned_peer",
    "collect",
    "cut_after",
    "documents",
    "gateway_side",
    "stall_after",
    "streamed",
    "whole",
]

OWN = "1.3.6.1.4.1.21367.13.70.201"
REMOTE = "1.3.6.1.4.1.21367.13.70.202"
REPOSITORY = "1.3.6.1.4.1.21367.13.71.201.1"
STUDY = "1.2.826.0.1.3680043.10.99.1"
SERIES = "1.2.826.0.1.3680043.10.99.1.1"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class CannedPeer:
    """Answers each POST with ``handler`` and records the request (headers, body); ``ended``
    collects how each answer ended on the peer's side (``sent``, ``gone``)."""

    handler: Handler | None = None
    received: list[tuple[CIMultiDictProxy[str], bytes]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append((request.headers, await request.read()))
        assert self.handler is not None, "the test did not say what to answer"
        return await self.handler(request)

    def note(self, how: str) -> None:
        self.ended.append(how)
        self.changed.set()

    async def wait_ended(self, timeout_s: float = 5) -> str:
        async with asyncio.timeout(timeout_s):
            while not self.ended:
                self.changed.clear()
                await self.changed.wait()
        return self.ended[-1]


def whole(content_type: str, body: bytes, *, status: int = 200) -> Handler:
    """Answer ``body`` in one go."""

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    return handler


def streamed(peer: CannedPeer, content_type: str, body: bytes, *, block: int = 16384) -> Handler:
    """Answer ``body`` in blocks, noting ``sent`` once all of it is out or ``gone`` when the
    gateway closed the connection first."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        try:
            for start in range(0, len(body), block):
                await response.write(body[start : start + block])
                await asyncio.sleep(0)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            peer.note("gone")
            raise
        peer.note("sent")
        return response

    return handler


def stall_after(peer: CannedPeer, content_type: str, body: bytes, at: int) -> Handler:
    """Send ``body[:at]`` and then nothing until the gateway gives up (noted ``gone``)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        await response.write(body[:at])
        try:
            for _ in range(600):  # at most 60 s; the gateway's idle limit ends it long before
                await asyncio.sleep(0.1)
                await response.write(b"")  # an empty write sends nothing
                if request.transport is None or request.transport.is_closing():
                    break
        finally:
            peer.note("gone")
        return response

    return handler


def cut_after(content_type: str, body: bytes, at: int) -> Handler:
    """Send ``body[:at]`` and then drop the connection."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        await response.write(body[:at])
        assert request.transport is not None
        request.transport.abort()
        return response

    return handler


class _Quiet:
    """Telemetry that records nothing (what the sinks make of a leg is tested elsewhere)."""

    def answered(self, exchange: Exchange, leg: Leg) -> None:
        leg.first_byte_s = exchange.elapsed()

    def seal(self, exchange: Exchange) -> None:
        exchange.sealed = True


def documents(
    uids: Sequence[str], *, hcid: str | None, repository: str = REPOSITORY
) -> list[DocumentRequest]:
    return [
        DocumentRequest(
            study_uid=STUDY,
            series_uid=SERIES,
            repository_id=repository,
            document_uid=uid,
            home_community_id=hcid,
        )
        for uid in uids
    ]


@dataclass
class Side:
    """The gateway's side of one inbound request."""

    registry: Registry
    relay: Relay
    exchange: Exchange
    spool: Spool
    budget: SpoolBudget
    settings: XcaSettings

    async def call(
        self,
        requested: Sequence[DocumentRequest],
        *,
        role: Role,
        transfer_syntaxes: tuple[str, ...] = (EXPLICIT_LE,),
    ) -> GroupAnswer:
        """One group's answer: the request is planned as the endpoint would plan it and
        must make exactly one group."""
        planned = plan(
            RetrieveRequest(documents=tuple(requested), transfer_syntaxes=transfer_syntaxes),
            self.registry,
            role,
        )
        assert len(planned.groups) == 1 and not planned.refused, planned
        fetching = Fetching(
            request=make_mocked_request("POST", "/xcai", headers={"Accept": "multipart/related"}),
            relay=self.relay,
            exchange=self.exchange,
            settings=self.settings,
            budget=self.budget,
            transfer_syntaxes=transfer_syntaxes,
        )
        assert fetching.own == HomeCommunityId(OWN)
        return await call(fetching, planned.groups[0], responding=role is Role.RESPONDING)


@asynccontextmanager
async def gateway_side(
    urls: Sequence[str],
    tmp_path: Path,
    *,
    read_idle_s: float = 2.0,
    spool_bytes: int = 64 << 20,
    settings: XcaSettings | None = None,
    upstream: dict[str, Any] | None = None,
) -> AsyncIterator[Side]:
    """A rad-75 community (``rig``, for REMOTE) and a rad-69 source (``ids``, for REPOSITORY),
    both at ``urls``."""
    entry = {
        "base_urls": list(urls),
        "timeouts": {"connect_s": 2, "read_idle_s": read_idle_s},
        **(upstream or {}),
    }
    document = {
        "self": {"home_community_id": OWN, "audit_source_id": "test-gateway"},
        "upstreams": {
            "rig": {"protocol": "rad-75", **entry},
            "ids": {"protocol": "rad-69", **entry},
        },
        "communities": {REMOTE: "rig"},
        "sources": {REPOSITORY: "ids"},
        "address_policy": {"allow_loopback": True},
    }
    registry = Registry(parse_config(document))
    pool = UpstreamPool(read_bufsize=64 * 1024)
    spool = Spool(tmp_path / "spool", max_bytes=spool_bytes, max_request_bytes=spool_bytes)
    try:
        with spool.request() as budget:
            yield Side(
                registry=registry,
                relay=Relay(pool=pool, registry=registry, telemetry=_Quiet()),
                exchange=Exchange(request_id="test", method="POST", path="/xcai", client=None),
                spool=spool,
                budget=budget,
                settings=settings or XcaSettings(),
            )
    finally:
        await pool.close()


@asynccontextmanager
async def canned_peer() -> AsyncIterator[tuple[CannedPeer, str]]:
    """A :class:`CannedPeer` at ``http://127.0.0.1:port/xcai``."""
    peer = CannedPeer()
    app = web.Application()
    app.router.add_post("/xcai", peer.handle)
    server = TestServer(app, host="127.0.0.1", handler_cancellation=True)
    await server.start_server()
    try:
        yield peer, str(server.make_url("/xcai"))
    finally:
        await server.close()


async def collect(answer: GroupAnswer) -> dict[str, bytes]:
    """Every part of ``answer`` read whole, by the DocumentUniqueId of the document naming it."""
    by_cid = {d.content_id: d.document_uid for d in answer.documents}
    out: dict[str, bytes] = {}
    async for part in answer.parts:
        data = bytearray()
        async for chunk in part.chunks:
            data += chunk
        out[by_cid[part.content_id]] = bytes(data)
    return out
