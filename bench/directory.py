"""Directory benchmark: what a cached directory answer adds to a request (issue 15).

Run with ``python -m bench.directory`` (``--requests N``). One in-process gateway on
loopback, one recording upstream (tests.functional.recorder), the FHIR peer
(peers.fhirserver) as the directory. Two Retrieve Location UIDs lead to the same upstream:
one configured under ``sources``, one known only to the directory (its answer cached after
the first request). Reported:

* ``resolve_hit_us``: p50 and p99 of :meth:`Directory.resolve` answering from the cache,
  timed alone (what the directory adds on top of the static registry's miss);
* ``request_ms``: p50 and p99 of a whole request through each route, alternating, and the
  difference of the p50s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.edge.reload import RegistryHolder
from gateway.keys import DIRECTORY, HOLDER
from gateway.settings import ServerSettings
from peers.fhirserver import FhirServer
from routing.errors import UnknownSource
from routing.loader import parse_config
from routing.rad160 import parse_rad160
from routing.registry import Registry
from tests.functional.recorder import Recorder
from tests.functional.test_directory import endpoint

OWN = "1.3.6.1.4.1.21367.13.80.1"
STATIC = "1.3.6.1.4.1.21367.13.80.1.1"
LISTED = "1.3.6.1.4.1.21367.13.80.1.2"
STUDY = "1.2.826.0.1.3680043.10.99.1"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(requests: int, folder: Path) -> dict[str, object]:
    with FhirServer(folder / "fhir") as fhir, Recorder() as upstream:
        fhir.create(endpoint(LISTED, upstream.url))
        document = {
            "self": {"home_community_id": OWN, "audit_source_id": "bench"},
            "address_policy": {"allow_loopback": True},
            "upstreams": {"ids": {"protocol": "wado-rs", "base_urls": [upstream.url]}},
            "sources": {STATIC: "ids"},
            "directory": {"base_url": fhir.base_url, "ttl_s": 3600, "upstream_allow_http": True},
        }
        holder = RegistryHolder(Registry(parse_config(document)))
        app = create_app(ServerSettings(), holder, metrics_registry=CollectorRegistry())
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:

                async def get(rluid: str) -> float:
                    path = (
                        f"/wado/homeCommunityId/{OWN}/RetrieveLocationUID/{rluid}/studies/{STUDY}"
                    )
                    start = time.perf_counter()
                    async with session.get(server.make_url(path)) as answer:
                        await answer.read()
                        assert answer.status == 200, answer.status
                    return time.perf_counter() - start

                await get(STATIC)
                await get(LISTED)  # the miss that fills the cache
                static, listed = [], []
                for _ in range(requests):
                    static.append(await get(STATIC))
                    listed.append(await get(LISTED))

                registry = app[HOLDER].registry
                directory = app[DIRECTORY]
                rad160 = parse_rad160(
                    f"homeCommunityId/{OWN}/RetrieveLocationUID/{LISTED}/studies/{STUDY}", ""
                )
                hits = []
                for _ in range(requests * 10):
                    start = time.perf_counter()
                    try:
                        registry.resolve(rad160)
                    except UnknownSource:
                        await directory.resolve(registry, rad160)
                    hits.append(time.perf_counter() - start)
        finally:
            await server.close()
    p50_static, p50_listed = statistics.median(static), statistics.median(listed)
    return {
        "requests": requests,
        "resolve_hit_us": {
            "p50": round(statistics.median(hits) * 1e6, 1),
            "p99": round(_quantile(hits, 0.99) * 1e6, 1),
        },
        "request_ms": {
            "static_p50": round(p50_static * 1e3, 3),
            "directory_p50": round(p50_listed * 1e3, 3),
            "static_p99": round(_quantile(static, 0.99) * 1e3, 3),
            "directory_p99": round(_quantile(listed, 0.99) * 1e3, 3),
            "added_p50": round((p50_listed - p50_static) * 1e3, 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-directory-") as folder:
        result = asyncio.run(_run(args.requests, Path(folder)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
