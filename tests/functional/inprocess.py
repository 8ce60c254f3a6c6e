"""An in-process gateway on a real loopback socket, for fault tests against peers.faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.edge.reload import RegistryHolder
from gateway.settings import ServerSettings
from routing.loader import parse_config
from routing.registry import Registry

OWN = "5.6.7.8"
STUDY = "1.2.826.0.1.3680043.10.99.1"


@dataclass
class Running:
    server: TestServer
    metrics: CollectorRegistry
    rluids: dict[str, str]  # scenario name -> Retrieve Location UID

    def url(self, scenario: str, tail: str = f"studies/{STUDY}", query: str = "") -> str:
        rluid = self.rluids[scenario]
        path = f"/wado/homeCommunityId/{OWN}/RetrieveLocationUID/{rluid}/{tail}"
        return str(self.server.make_url(path)) + (f"?{query}" if query else "")

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def running_gateway(
    scenarios: dict[str, list[str]],
    *,
    read_idle_s: float = 1.0,
    extra: dict[str, Any] | None = None,
    settings: ServerSettings | None = None,
) -> AsyncIterator[Running]:
    """A responding gateway whose sources are ``{scenario: [base_url, …]}``."""
    upstreams = {}
    sources = {}
    rluids = {}
    for index, (name, base_urls) in enumerate(scenarios.items(), start=1):
        upstreams[name] = {
            "protocol": "wado-rs",
            "base_urls": base_urls,
            "timeouts": {"connect_s": 1, "read_idle_s": read_idle_s},
        }
        rluids[name] = f"1.2.3.{index}"
        sources[rluids[name]] = name
    document = {
        "self": {"home_community_id": OWN, "audit_source_id": "test-gateway"},
        "upstreams": upstreams,
        "sources": sources,
        # Every peer of the tests is on 127.0.0.1; production refuses loopback by default.
        "address_policy": {"allow_loopback": True},
        **(extra or {}),
    }
    metrics = CollectorRegistry()
    app = create_app(
        settings or ServerSettings(), RegistryHolder(Registry(parse_config(document))), metrics_registry=metrics
    )
    server = TestServer(app, host="127.0.0.1", handler_cancellation=True)
    await server.start_server()
    try:
        yield Running(server=server, metrics=metrics, rluids=rluids)
    finally:
        await server.close()
