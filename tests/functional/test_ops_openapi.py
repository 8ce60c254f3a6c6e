"""Issue 14 item 8: the OpenAPI document of the HTTP surface (``gateway/openapi.yaml``) holds
against a running gateway — schemathesis generates requests from it, valid and not, and checks
every answer's status, content type, headers and schema — and the admin listener serves it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

from peers.faults import FaultUpstream
from peers.gateway import REPO, GatewayProcess, gateway_config
from peers.net import free_port

DOCUMENT = REPO / "gateway" / "openapi.yaml"

# Where a schema cannot say everything, with the reason (schemathesis.toml).
CONFIG = """\
[[operations]]
# A manifest's validity is its MADO content (a KOS or a FHIR document Bundle that names
# studies and where they are), which no schema states: a body valid by the schema is
# still refused, 400 invalid-manifest or 422 unroutable-series.
include-path = "/mado/retrieve"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "422", "429", "5xx"]

[[operations]]
# A SOAP request's validity is its envelope (IHE RAD TF-3 4.69, 4.75); and SOAP 1.2 Part 2
# section 7.5.2.2 answers a VersionMismatch or a Receiver Fault with HTTP 500.
include-path = "/xcai"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "415", "429", "5xx"]
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "500"]
"""


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return bytes(answer.read())


def schemathesis(
    url: str, tag: str, report: Path, max_time_s: int
) -> subprocess.CompletedProcess[str]:
    """``schemathesis run`` over the operations tagged ``tag``, against ``url``; bounded."""
    config = report.with_suffix(".toml")
    config.write_text(CONFIG)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            str(DOCUMENT),
            "--url",
            url,
            "--include-tag",
            tag,
            "--max-examples",
            "10",
            "--seed",
            "14",
            "--request-timeout",
            "10",
            "--max-time",
            str(max_time_s),
            "--workers",
            "1",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        cwd=report.parent,  # its cache (.schemathesis/) goes there, not into the checkout
        timeout=180,
        check=False,
    )


async def test_schemathesis_finds_no_failure_against_a_running_gateway(tmp_path: Path) -> None:
    async with FaultUpstream() as up:
        # the document's examples name this community and location: its examples phase
        # reaches the upstream and relays its answer
        config = gateway_config(
            home_community_id="1.3.6.1.4.1.21367.13.70.1",
            port=free_port(),
            upstreams={"src": {"protocol": "wado-rs", "base_urls": [up.base_url + "ok/"]}},
            sources={"1.3.6.1.4.1.21367.13.70.1.200": "src"},
        )
        # generated requests come fast and from one address: no rate limit in their way
        config["server"]["rate_limit"] = {"requests_per_s": 100000, "burst": 100000}
        with GatewayProcess(tmp_path, config) as gateway:
            public = await asyncio.to_thread(
                schemathesis, gateway.url, "public", tmp_path / "public.xml", 20
            )
            admin = await asyncio.to_thread(
                schemathesis, gateway.admin_url, "admin", tmp_path / "admin.xml", 8
            )
            served = json.loads(await asyncio.to_thread(fetch, gateway.admin_url + "/openapi.json"))
    assert public.returncode == 0, public.stdout[-6000:] + public.stderr[-2000:]
    assert admin.returncode == 0, admin.stdout[-6000:] + admin.stderr[-2000:]
    for report in ("public.xml", "admin.xml"):
        text = (tmp_path / report).read_text()
        assert "<testcase" in text and "<failure" not in text
    assert served == yaml.safe_load(DOCUMENT.read_text())
    assert "/xcai" in served["paths"] and "/mado/retrieve" in served["paths"]
