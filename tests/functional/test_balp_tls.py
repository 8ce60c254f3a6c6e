"""The IHE BALP feed over TLS (spec-digest checklist item 58) against the real FHIR peer
serving https with a certificate made per test (trustme): every AuditEvent codes its DICOM
codes in the DCM system and reaches the server over a verified connection; with a CA that
does not verify the server nothing is accepted, the events wait in the journal, and they
arrive once the right CA is configured."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from prometheus_client import CollectorRegistry

from gateway.audit import codes
from gateway.audit.messages import AlertKind
from gateway.audit.service import AuditService
from gateway.audit.settings import AuditSettings, parse_audit_settings
from peers.fhirserver import FhirServer, ServerTls, fhir_peer_available
from tests.functional.test_balp_feed import IDENTITY, exchange, request_ids

DCM = "http://dicom.nema.org/resources/ontology/DCM"
IHE_TRANSACTIONS = "urn:ihe:event-type-code"
DICOM_CODES = {
    value.code
    for value in vars(codes).values()
    if isinstance(value, codes.Code) and value.scheme == "DCM"
}
EVENTS = 20


@pytest.fixture(scope="module", autouse=True)
def fhir_peer_installed() -> None:
    """Fails (never skips) every test here when the FHIR peer cannot start."""
    reason = fhir_peer_available()
    if reason is not None:
        pytest.fail(f"the FHIR peer cannot start: {reason}")


def write_ca(ca: trustme.CA, path: Path) -> Path:
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def fhir(tmp_path: Path) -> Iterator[FhirServer]:
    """The FHIR peer serving https with a certificate for 127.0.0.1 from its own CA."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", common_name="fhir.test")
    cert, key = tmp_path / "fhir.crt", tmp_path / "fhir.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    tls = ServerTls(cert_file=cert, key_file=key, ca_file=write_ca(ca, tmp_path / "fhir-ca.pem"))
    with FhirServer(tmp_path / "fhir", tls=tls) as server:
        yield server


def settings(tmp_path: Path, base_url: str, ca_file: Path) -> AuditSettings:
    return parse_audit_settings(
        {
            "audit": {
                "destinations": [
                    {
                        "name": "balp",
                        "transport": "fhir",
                        "fhir": {"base_url": base_url, "ca_file": str(ca_file)},
                    }
                ],
                "journal": {"directory": str(tmp_path / "journal"), "fsync_interval_s": 0.05},
                "retry": {"initial_s": 0.05, "max_s": 0.2},
                "stop_timeout_s": 0.5,
            }
        },
        source="test",
    )


async def stored_when(fhir: FhirServer, wanted: set[str]) -> list[dict[str, Any]]:
    """Every AuditEvent on the server once all ``wanted`` request ids are there (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        stored = await asyncio.to_thread(fhir.search, "AuditEvent")
        seen = {rid for resource in stored for rid in request_ids(resource)}
        if wanted <= seen or time.monotonic() > deadline:
            return stored
        await asyncio.sleep(0.1)


def codings(resource: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, coding) of every coded value of an AuditEvent the DICOM mapping fills."""
    yield "type", resource["type"]
    for coding in resource.get("subtype", []):
        yield "subtype", coding
    for agent in resource["agent"]:
        for coding in agent.get("type", {}).get("coding", []):
            yield "agent.type", coding
    for entity in resource.get("entity", []):
        for coding in entity["what"]["identifier"].get("type", {}).get("coding", []):
            yield "entity.what.identifier.type", coding


@pytest.mark.checklist(58)
async def test_audit_events_reach_the_server_over_tls_with_dcm_codes(
    tmp_path: Path, fhir: FhirServer
) -> None:
    assert fhir.tls is not None and fhir.base_url.startswith("https://")
    service = AuditService(
        settings(tmp_path, fhir.base_url, fhir.tls.ca_file),
        IDENTITY,
        registry=CollectorRegistry(),
    )
    await service.start()
    try:
        for number in range(EVENTS):
            service.observe(exchange(number))
        service.security_alert(AlertKind.TLS_FAILURE, "https://ids.example.org/", "test alert")
        wanted = {f"balp-{n:05d}" for n in range(EVENTS)}
        stored = await stored_when(fhir, wanted)
    finally:
        await service.stop()
    assert {rid for resource in stored for rid in request_ids(resource)} == wanted
    events = {resource["type"]["code"] for resource in stored}
    # Application Start (110100), the transfers (110104) and the alert (110113) all came.
    assert {"110100", "110104", "110113"} <= events
    seen_dicom: set[str] = set()
    for resource in stored:
        assert resource["type"]["system"] == DCM
        for where, coding in codings(resource):
            if coding["code"] in DICOM_CODES:
                seen_dicom.add(coding["code"])
                assert coding["system"] == DCM, (where, coding)
            else:  # the one other kind of code here: an IHE transaction, or RFC 3881's
                assert (where, coding["system"]) in {
                    ("subtype", IHE_TRANSACTIONS),
                    ("entity.what.identifier.type", "urn:mado-gateway:code-scheme:RFC-3881"),
                }, (where, coding)
    # Event IDs, event types, role IDs and object ID types were all among them.
    assert {"110100", "110120", "110104", "110113", "110152", "110153", "110180"} <= seen_dicom


async def test_a_server_the_ca_does_not_verify_gets_nothing_until_the_right_ca(
    tmp_path: Path, fhir: FhirServer
) -> None:
    assert fhir.tls is not None
    other_ca = write_ca(trustme.CA(), tmp_path / "other-ca.pem")
    registry = CollectorRegistry()
    service = AuditService(settings(tmp_path, fhir.base_url, other_ca), IDENTITY, registry=registry)
    failures = {"destination": "balp", "reason": "tls"}
    await service.start()
    try:
        for number in range(5):
            service.observe(exchange(number))
        deadline = time.monotonic() + 10
        while (
            registry.get_sample_value("mado_gateway_audit_send_failures_total", failures) or 0
        ) < 3:
            assert time.monotonic() < deadline, "the feed did not retry"
            await asyncio.sleep(0.05)
        assert (
            registry.get_sample_value("mado_gateway_audit_connected", {"destination": "balp"}) == 0
        )
    finally:
        await service.stop()
    assert await asyncio.to_thread(fhir.search, "AuditEvent") == []

    # The operator fixes the CA; the journal still holds every event from the cursor on.
    service = AuditService(
        settings(tmp_path, fhir.base_url, fhir.tls.ca_file), IDENTITY, registry=CollectorRegistry()
    )
    await service.start()
    try:
        wanted = {f"balp-{n:05d}" for n in range(5)}
        stored = await stored_when(fhir, wanted)
    finally:
        await service.stop()
    assert {rid for resource in stored for rid in request_ids(resource)} == wanted
    # The first run's Application Start and Stop came too: nothing was lost to the bad CA.
    activity = [r for r in stored if r["type"]["code"] == "110100"]
    assert len(activity) >= 3
