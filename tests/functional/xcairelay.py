"""Gateways and helpers of the SOAP relay tests (``test_xcai_relay*``): the communities,
their gateway processes in front of the session's Orthanc, what Orthanc stores, and how
requests for its instances are written.

Topology (every gateway its own process, each answering RAD-69/RAD-75 at ``/xcai``)::

    client ──RAD-69──▶ B (initiating) ──RAD-75──▶ A1 (responding) ──WADO-RS──▶ Orthanc
                                      └─RAD-75──▶ A2 (responding) ──WADO-RS──▶ Orthanc
    client ──RAD-75──▶ R (responding, per test) ──RAD-69──▶ S (community C's
                                                             Imaging Document Source:
                                                             a gateway in front of Orthanc)

S is a gateway of community C: asked RAD-69 for its own community, it answers locally
from its wado-rs source (the bridge), which makes it a RAD-69 Imaging Document Source.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pydicom

from peers.gateway import (
    GatewayProcess,
    gateway_config,
    rad_upstream,
    soap_url,
    xca_server,
    xca_spool,
)
from peers.net import free_port
from peers.orthanc import OrthancServer
from peers.studies import SyntheticInstance
from tests.functional.audit.auditpeer import event_of, parse
from tests.functional.soapclient import Doc

__all__ = [
    "COMMUNITY_A1",
    "COMMUNITY_A2",
    "COMMUNITY_B",
    "COMMUNITY_C",
    "RLUID_A1",
    "RLUID_A2",
    "RLUID_S",
    "audit_events",
    "docs_for",
    "exchanges",
    "gateway",
    "rad75",
    "stored_digests",
    "started",
    "unknown_docs",
    "urn",
    "wado",
]

COMMUNITY_A1 = "1.3.6.1.4.1.21367.13.70.11"
COMMUNITY_A2 = "1.3.6.1.4.1.21367.13.70.12"
COMMUNITY_B = "1.3.6.1.4.1.21367.13.70.20"
COMMUNITY_C = "1.3.6.1.4.1.21367.13.70.30"
RLUID_A1 = "1.3.6.1.4.1.21367.13.71.11.1"
RLUID_A2 = "1.3.6.1.4.1.21367.13.71.12.1"
RLUID_S = "1.3.6.1.4.1.21367.13.71.30.1"


def urn(oid: str) -> str:
    return f"urn:oid:{oid}"


def gateway(
    folder: Path,
    name: str,
    community: str,
    *,
    upstreams: dict[str, dict[str, Any]],
    communities: dict[str, str] | None = None,
    sources: dict[str, str] | None = None,
) -> GatewayProcess:
    """A gateway process (not started) answering SOAP at ``/xcai``, with its own spool."""
    config = gateway_config(
        home_community_id=community,
        port=free_port(),
        upstreams=upstreams,
        communities=communities,
        sources=sources,
        xca=xca_server(spool=xca_spool(folder / f"{name}-spool")),
    )
    return GatewayProcess(folder, config, name=name)


def wado(orthanc: OrthancServer) -> dict[str, Any]:
    return {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}


def rad75(target: GatewayProcess) -> dict[str, Any]:
    return rad_upstream("rad-75", [soap_url(target)])


@contextmanager
def started(*gateways: GatewayProcess) -> Iterator[None]:
    """Start ``gateways`` side by side (each takes about a second to come up); stop them all
    at the end, also when one fails to start."""
    with ExitStack() as stack:
        for process in gateways:
            stack.callback(process.stop)
        with ThreadPoolExecutor(len(gateways)) as pool:
            list(pool.map(lambda process: process.__enter__(), gateways))
        yield


def stored_digests(orthanc: OrthancServer) -> dict[str, str]:
    """SHA-256 of every instance file as Orthanc stores it (GET /instances/{id}/file), by
    SOP Instance UID."""

    def get(path: str) -> bytes:
        with urllib.request.urlopen(orthanc.url + path, timeout=30) as answer:
            data: bytes = answer.read()
            return data

    digests = {}
    for orthanc_id in json.loads(get("/instances")):
        data = get(f"/instances/{orthanc_id}/file")
        sop = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID
        digests[str(sop)] = hashlib.sha256(data).hexdigest()
    return digests


def docs_for(
    instances: Sequence[SyntheticInstance],
    study_uid: str,
    *,
    repository: str,
    community: str | None,
) -> list[Doc]:
    return [
        Doc(
            study=study_uid,
            series=instance.series_uid,
            document_uid=instance.sop_instance_uid,
            repository_id=repository,
            home_community_id=None if community is None else urn(community),
        )
        for instance in instances
    ]


def unknown_docs(
    count: int, study_uid: str, series_uid: str, *, repository: str, community: str
) -> list[Doc]:
    """Documents of a known series that no source holds."""
    return [
        Doc(
            study=study_uid,
            series=series_uid,
            document_uid=f"2.25.{987_654_321_000 + index}",
            repository_id=repository,
            home_community_id=urn(community),
        )
        for index in range(count)
    ]


def exchanges(process: GatewayProcess, path: str = "/xcai") -> list[dict[str, Any]]:
    """The access lines (``"msg":"exchange"``) of ``process`` for ``path``."""
    lines = [json.loads(line) for line in process.log().splitlines() if '"msg":"exchange"' in line]
    return [line for line in lines if line.get("path") == path]


def audit_events(
    process: GatewayProcess, event_id: str, *, at_least: int, timeout_s: float = 10
) -> list[Any]:
    """The audit messages ``event_id`` of ``process`` (validated), once there are
    ``at_least`` of them."""
    log = process.audit_folder / "audit.log"
    deadline = time.monotonic() + timeout_s
    while True:
        lines = log.read_bytes().split(b"\n")[:-1] if log.exists() else []
        roots = [root for root in (parse(line) for line in lines) if event_of(root) == event_id]
        if len(roots) >= at_least or time.monotonic() > deadline:
            assert len(roots) >= at_least, f"{len(roots)} {event_id} messages in {log}"
            return roots
        time.sleep(0.1)
