"""A real Prometheus scrapes a gateway that has served a cross-community retrieval."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port
from peers.orthanc import OrthancServer
from peers.prometheus import PrometheusServer
from peers.studies import SyntheticStudy


def test_prometheus_scrapes_the_gateway_metrics(
    tmp_path: Path, orthanc: OrthancServer, study: SyntheticStudy
) -> None:
    config = gateway_config(
        home_community_id="5.6.7.8",
        port=free_port(),
        upstreams={"orthanc": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
        sources={"1.2.3": "orthanc"},
    )
    with GatewayProcess(tmp_path / "gw", config) as gateway:
        url = f"{gateway.endpoint}homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3/studies/{study.study_uid}"
        with urllib.request.urlopen(url, timeout=60) as answer:
            size = len(answer.read())
        with PrometheusServer(tmp_path / "prom", [f"127.0.0.1:{gateway.admin_port}"]) as prometheus:
            deadline = time.monotonic() + 30
            while not prometheus.query('up{job="mado-gateway"} == 1'):
                assert time.monotonic() < deadline, "Prometheus never scraped the gateway"
                time.sleep(0.25)
            relayed = prometheus.query(
                'mado_gateway_relayed_bytes_total{route="source",upstream="orthanc"}'
            )
            requests = prometheus.query('mado_gateway_requests_total{route="source",status="200"}')
            lookups = prometheus.query(
                'mado_gateway_routing_lookups_total{result="unknown-community"}'
            )
    assert float(relayed[0]["value"][1]) == size
    assert float(requests[0]["value"][1]) == 1
    assert requests[0]["metric"]["resource"] == "instances"
    assert float(lookups[0]["value"][1]) == 0  # initialised at start: a zero, not a gap
