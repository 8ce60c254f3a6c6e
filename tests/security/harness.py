"""Peers for the security tests: a scripted upstream, listeners that must stay untouched, and an
in-process gateway on a real loopback socket that records its security events.

Every address used is loopback, but the gateway's address policy admits only 127.0.0.1/32:
127.0.0.2 (and ::1) stand for the forbidden addresses an attacker would aim at, and a
:class:`Listener` there proves that no connection was attempted.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from yarl import URL

from gateway.app import create_app
from gateway.edge.reload import RegistryHolder
from gateway.exchange import ExchangeSink
from gateway.settings import ServerSettings, parse_server_settings
from peers.faults import MULTIPART, multipart_body
from routing.loader import parse_config
from routing.registry import Registry

OWN = "5.6.7.8"
STUDY = "1.2.826.0.1.3680043.10.99.1"
ONLY_127_0_0_1 = {"allowed_networks": ["127.0.0.1/32"]}


class Listener:
    """A TCP socket that accepts and counts connections; it must see none."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Listener:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Scripted:
    """An upstream on 127.0.0.1: ``/ok/…`` answers a study; ``/r/{key}/…`` answers
    ``script[key]`` = (status, Location or None)."""

    body: bytes = field(default_factory=lambda: multipart_body([bytes(range(256)) * 64] * 3))
    script: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    server: TestServer | None = None
    ssl_context: ssl.SSLContext | None = None
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # releases /slow/ answers

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/"))

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")

    async def __aenter__(self) -> Scripted:
        app = web.Application()
        app.router.add_get("/ok/{tail:.*}", self._ok)
        app.router.add_get("/r/{key}/{tail:.*}", self._redirect)
        app.router.add_get("/slow/{tail:.*}", self._slow)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server(ssl=self.ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.close()

    def _note(self, request: web.Request) -> None:
        self.seen.append(Seen(request.path_qs, {k.lower(): v for k, v in request.headers.items()}))

    async def _ok(self, request: web.Request) -> web.Response:
        self._note(request)
        return web.Response(body=self.body, headers={"Content-Type": MULTIPART})

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        """The first half of the study, then the rest once ``gate`` is set."""
        self._note(request)
        response = web.StreamResponse(headers={"Content-Type": MULTIPART})
        await response.prepare(request)
        half = len(self.body) // 2
        await response.write(self.body[:half])
        await self.gate.wait()
        await response.write(self.body[half:])
        await response.write_eof()
        return response

    async def _redirect(self, request: web.Request) -> web.Response:
        self._note(request)
        status, location = self.script[request.match_info["key"]]
        headers = {"Location": location} if location is not None else {}
        return web.Response(status=status, body=b'{"secret": "upstream detail"}', headers=headers)


class RecordingEvents:
    """A SecurityEvents implementation that keeps what it receives."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, str, str]] = []

    def security_alert(
        self, kind: str, target: str, detail: str, *, performer: str | None = None
    ) -> None:
        self.alerts.append((kind, target, detail))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.alerts]


@dataclass
class Gateway:
    server: TestServer
    metrics: CollectorRegistry
    events: RecordingEvents
    rluids: dict[str, str]

    def url(self, source: str, tail: str = f"studies/{STUDY}", query: str = "") -> str:
        path = f"/wado/homeCommunityId/{OWN}/RetrieveLocationUID/{self.rluids[source]}/{tail}"
        return str(self.server.make_url(path)) + (f"?{query}" if query else "")

    def raw(self, path_and_query: str) -> str:
        return str(self.server.make_url("/")).rstrip("/") + path_and_query

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def gateway(
    upstreams: dict[str, dict[str, Any]],
    *,
    address_policy: dict[str, Any] | None = None,
    url_policy: dict[str, Any] | None = None,
    server: dict[str, Any] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    extra_sinks: Sequence[ExchangeSink] = (),
) -> AsyncIterator[Gateway]:
    """A responding gateway; each upstream is a source with its own Retrieve Location UID.

    ``extra_sinks`` receive every sealed exchange too."""
    rluids = {name: f"1.2.3.{index}" for index, name in enumerate(upstreams, start=1)}
    document: dict[str, Any] = {
        "self": {"home_community_id": OWN, "audit_source_id": "security-tests"},
        "upstreams": {
            name: {"protocol": "wado-rs", "timeouts": {"connect_s": 1, "read_idle_s": 2}, **u}
            for name, u in upstreams.items()
        },
        "sources": {rluid: name for name, rluid in rluids.items()},
        "address_policy": ONLY_127_0_0_1 if address_policy is None else address_policy,
    }
    if url_policy is not None:
        document["url_policy"] = url_policy
    settings = parse_server_settings({"server": server}) if server is not None else ServerSettings()
    metrics = CollectorRegistry()
    events = RecordingEvents()
    app = create_app(
        settings,
        RegistryHolder(Registry(parse_config(document))),
        metrics_registry=metrics,
        security_events=events,
        extra_sinks=extra_sinks,
    )
    test_server = TestServer(app, host="127.0.0.1", handler_cancellation=True)
    await test_server.start_server(ssl=ssl_context)
    try:
        yield Gateway(server=test_server, metrics=metrics, events=events, rluids=rluids)
    finally:
        await test_server.close()


async def fetch(
    url: str, *, ssl: ssl.SSLContext | bool = True, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """GET with aiohttp; the URL is sent as given (no re-quoting)."""
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(URL(url, encoded=True), headers=headers, ssl=ssl) as answer,
    ):
        return answer.status, dict(answer.headers), await answer.read()


async def raw_request(host: str, port: int, data: bytes) -> tuple[int, bytes]:
    """Send raw bytes; return the status code and everything the server answered."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), timeout=5)
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0
    return status, answer
