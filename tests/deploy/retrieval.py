"""One real retrieval through a gateway in a container, compared with Orthanc directly."""

from __future__ import annotations

import urllib.request
from typing import Any

from peers.chain import COMMUNITY_A, RLUID
from peers.gateway import gateway_config
from peers.multipart import boundary_of, split_multipart
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy

__all__ = ["assert_same_series", "container_config"]

DICOM = 'multipart/related; type="application/dicom"'


def container_config(orthanc: OrthancServer, port: int) -> dict[str, Any]:
    """A responding gateway for Orthanc, on 127.0.0.1:``port`` of the host's network (the
    chart replaces host and port with its own; podman runs it with --network=host)."""
    config = gateway_config(
        home_community_id=COMMUNITY_A,
        port=port,
        base_path="/wado-rs",
        upstreams={"ids-a": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
        sources={RLUID: "ids-a"},
    )
    config["self"]["audit_source_id"] = "gateway-in-a-container"
    return config


def _get(url: str) -> tuple[str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": DICOM})
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 200
        return answer.headers["Content-Type"], answer.read()


def assert_same_series(endpoint: str, orthanc: OrthancServer, study: SyntheticStudy) -> int:
    """Retrieve the first series through ``endpoint`` (the gateway's XC-WADO endpoint, ending
    in ``/``) and from Orthanc; the answers are the same bytes but for the boundary, and
    carry every stored instance. Returns the bytes received through the gateway."""
    series = study.series_uids[0]
    tail = f"studies/{study.study_uid}/series/{series}"
    via_type, via = _get(
        f"{endpoint}homeCommunityId/{COMMUNITY_A}/RetrieveLocationUID/{RLUID}/{tail}"
    )
    direct_type, direct = _get(orthanc.dicomweb_url + tail)
    assert via.replace(boundary_of(via_type).encode(), b"B") == direct.replace(
        boundary_of(direct_type).encode(), b"B"
    )
    parts = {part.body for part in split_multipart(via, via_type)}
    assert parts == {instance.part10 for instance in study.of_series(series)}
    return len(via)
