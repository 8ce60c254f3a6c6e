"""Directory-backed resolution against a real FHIR server (Medplum's engine, peers/fhirserver):
entries added and removed take effect within the TTL without a reload, an outage serves
fresh cached answers and then fails with 503 directory-unavailable, directory addresses pass
the address policy of a configured upstream, and the pool stays bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.edge.reload import RegistryHolder
from gateway.keys import POOL
from gateway.settings import ServerSettings
from peers.fhirserver import FhirServer, fhir_peer_available
from routing.loader import parse_config
from routing.registry import Registry
from tests.functional.recorder import Recorder

OWN = "1.3.6.1.4.1.21367.13.80.1"
OTHER = "1.3.6.1.4.1.21367.13.80.2"
STUDY = "1.2.826.0.1.3680043.10.99.1"
CONNECTION = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
RLUID_EXTENSION = (
    "https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoRetrieveLocationUIDExtension"
)


@pytest.fixture(scope="module", autouse=True)
def fhir_peer_installed() -> None:
    """Fails (never skips) every test here when the FHIR peer cannot start."""
    reason = fhir_peer_available()
    if reason is not None:
        pytest.fail(f"the FHIR peer cannot start: {reason}")


def endpoint(rluid: str, address: str) -> dict[str, Any]:
    """A MadoWadoEndpoint as the manifests carry it, with the UID as an identifier too."""
    return {
        "resourceType": "Endpoint",
        "extension": [{"url": RLUID_EXTENSION, "valueString": rluid}],
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{rluid}"}],
        "status": "active",
        "connectionType": {"system": CONNECTION, "code": "dicom-wado-rs"},
        "name": "WADO endpoint",
        "payloadType": [{"text": "DICOM WADO-RS"}],
        "address": address,
    }


@pytest.fixture(scope="module")
def fhir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with FhirServer(tmp_path_factory.mktemp("fhir")) as server:
        yield server


@pytest.fixture(scope="module")
def source() -> Iterator[Recorder]:
    with Recorder() as up:
        yield up


@dataclass
class Gateway:
    server: TestServer
    metrics: CollectorRegistry
    session: aiohttp.ClientSession

    async def get(self, rluid: str, hcid: str = OWN) -> tuple[int, dict[str, Any] | bytes]:
        path = f"/wado/homeCommunityId/{hcid}/RetrieveLocationUID/{rluid}/studies/{STUDY}"
        async with self.session.get(self.server.make_url(path)) as answer:
            if answer.content_type == "application/problem+json":
                return answer.status, await answer.json(content_type=None)
            return answer.status, await answer.read()

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def gateway(directory: dict[str, Any], **extra: Any) -> AsyncIterator[Gateway]:
    document = {
        "self": {"home_community_id": OWN, "audit_source_id": "directory-test"},
        "address_policy": {"allow_loopback": True},  # every peer of the test is on loopback
        "upstreams": {"unused": {"protocol": "wado-rs", "base_urls": ["http://127.0.0.1:9/"]}},
        "directory": {"upstream_allow_http": True, **directory},
        **extra,
    }
    metrics = CollectorRegistry()
    holder = RegistryHolder(Registry(parse_config(document)))
    app = create_app(ServerSettings(), holder, metrics_registry=metrics)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Gateway(server=server, metrics=metrics, session=session)
    finally:
        await server.close()


async def until(check: Any, timeout_s: float) -> float:
    """Seconds until ``await check()`` is true; fails after ``timeout_s``."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < timeout_s, "not within the time allowed"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def test_added_source_becomes_routable_and_removed_one_stops(
    fhir: FhirServer, source: Recorder
) -> None:
    rluid = "1.3.6.1.4.1.21367.13.80.1.101"
    settings = {"base_url": fhir.base_url, "ttl_s": 1.0, "negative_ttl_s": 0.5}
    async with gateway(settings) as gw:
        status, problem = await gw.get(rluid)
        assert status == 404
        assert isinstance(problem, dict)
        assert problem["type"].endswith(":unknown-retrieve-location")

        created = fhir.create(endpoint(rluid, source.url))

        async def routable() -> bool:
            return (await gw.get(rluid))[0] == 200

        assert await until(routable, timeout_s=0.5 + 0.5) <= 1.0  # negative_ttl_s, no reload
        status, body = await gw.get(rluid)
        assert status == 200 and isinstance(body, bytes) and b"--" in body
        assert source.requests[-1].target == f"/studies/{STUDY}".encode()
        assert gw.metric("mado_gateway_directory_cache_hits_total", kind="source", answer="found")

        fhir.delete("Endpoint", created["id"])

        async def gone() -> bool:
            return (await gw.get(rluid))[0] == 404

        assert await until(gone, timeout_s=1.0 + 0.5) <= 1.5  # ttl_s
        misses = gw.metric("mado_gateway_directory_cache_misses_total", kind="source")
        assert misses >= 3  # unknown, then found, then gone: one search each


async def test_outage_serves_fresh_answers_then_fails_clearly(
    tmp_path: Path, source: Recorder
) -> None:
    rluid = "1.3.6.1.4.1.21367.13.80.1.102"
    with FhirServer(tmp_path / "fhir") as fhir:
        fhir.create(endpoint(rluid, source.url))
        settings = {"base_url": fhir.base_url, "ttl_s": 1.5, "connect_s": 0.5, "request_s": 1}
        async with gateway(settings) as gw:
            assert (await gw.get(rluid))[0] == 200
            stored_at = time.monotonic()
            fhir.stop()
            assert (await gw.get(rluid))[0] == 200  # fresh: served from the cache
            await asyncio.sleep(max(0.0, 1.6 - (time.monotonic() - stored_at)))
            status, problem = await gw.get(rluid)
            assert status == 503
            assert isinstance(problem, dict)
            assert problem["type"].endswith(":directory-unavailable")
            assert gw.metric("mado_gateway_directory_errors_total", kind="source", reason="connect")
            assert (await gw.get("1.3.6.1.4.1.21367.13.80.1.103"))[0] == 503
            fhir.start()
            assert (await gw.get(rluid))[0] == 200  # back without a reload


async def test_community_from_organization_and_endpoint(fhir: FhirServer) -> None:
    with Recorder() as responding:
        endpoint_id = fhir.create(
            {
                "resourceType": "Endpoint",
                "status": "active",
                "connectionType": {"system": CONNECTION, "code": "dicom-wado-rs"},
                "payloadType": [{"text": "DICOM WADO-RS"}],
                "address": responding.url + "rig/",
            }
        )["id"]
        fhir.create(
            {
                "resourceType": "Organization",
                "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{OTHER}"}],
                "name": "Community A",
                "endpoint": [{"reference": f"Endpoint/{endpoint_id}"}],
            }
        )
        async with gateway({"base_url": fhir.base_url}) as gw:
            status, _ = await gw.get("1.3.6.1.4.1.21367.13.80.2.7", hcid=OTHER)
            assert status == 200
            expected = (
                f"/rig/homeCommunityId/{OTHER}/RetrieveLocationUID/"
                f"1.3.6.1.4.1.21367.13.80.2.7/studies/{STUDY}"
            )
            assert responding.requests[-1].target == expected.encode()


async def test_directory_addresses_pass_the_address_policy(
    fhir: FhirServer, source: Recorder
) -> None:
    """A directory address on loopback is refused when the policy for directory upstreams
    refuses loopback, as for a configured upstream; the directory itself may be local."""
    rluid = "1.3.6.1.4.1.21367.13.80.1.104"
    fhir.create(endpoint(rluid, source.url))
    before = len(source.requests)
    settings = {"base_url": fhir.base_url, "upstream_address_policy": {"allow_loopback": False}}
    async with gateway(settings) as gw:
        status, problem = await gw.get(rluid)
        assert status == 502
        assert isinstance(problem, dict)
        assert problem["type"].endswith(":address-refused")
    assert len(source.requests) == before


async def test_pool_stays_bounded_as_entries_come_and_go(fhir: FhirServer) -> None:
    """Each directory upstream gets a session; when its answer expires the session goes."""
    recorders = [Recorder() for _ in range(5)]
    for recorder in recorders:
        recorder.__enter__()
    try:
        rluids = [f"1.3.6.1.4.1.21367.13.80.1.2{n}" for n in range(len(recorders))]
        for rluid, recorder in zip(rluids, recorders, strict=True):
            fhir.create(endpoint(rluid, recorder.url))
        async with gateway({"base_url": fhir.base_url, "ttl_s": 0.5}) as gw:
            pool = gw.server.app[POOL]
            baseline = len(pool)
            for rluid in rluids:
                assert (await gw.get(rluid))[0] == 200
            assert len(pool) == baseline + len(rluids)
            await asyncio.sleep(0.6)
            assert (await gw.get(rluids[0]))[0] == 200  # the look-up that expires the rest
            assert len(pool) == baseline + 1
    finally:
        for recorder in recorders:
            recorder.__exit__()


async def test_one_search_per_key_for_concurrent_misses(fhir: FhirServer, source: Recorder) -> None:
    rluid = "1.3.6.1.4.1.21367.13.80.1.105"
    fhir.create(endpoint(rluid, source.url))
    async with gateway({"base_url": fhir.base_url}) as gw:
        statuses = await asyncio.gather(*(gw.get(rluid) for _ in range(20)))
        assert [status for status, _ in statuses] == [200] * 20
        assert gw.metric("mado_gateway_directory_cache_misses_total", kind="source") == 1
